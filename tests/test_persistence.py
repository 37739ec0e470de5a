"""Persistence: pickle, joblib and skops round trips, tables that travel with the model.

Predictions after loading are compared bitwise with the predictions before saving; the
claim that loading does not rebuild kernel tables is checked by counting
``KernelFunction._build`` calls with the loading activation's table cache emptied (as in
a fresh process), and once in a real fresh process in which building a table raises.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import skops.io as sio
from sklearn.pipeline import make_pipeline

import infdepth
from infdepth import (
    InfiniteNetworkClassifier,
    KernelFunction,
    SingularKernelClassifier,
    SphereProjection,
)
from infdepth.estimators import IllConditionedGramWarning

DESIGNED = infdepth.design_activation(dimension=3)


def phi(x):
    """A module-level activation: picklable by reference."""
    return np.tanh(2 * x) + 0.1 * x


CALLABLE = infdepth.Activation.from_callable(phi)

CASES = {
    "relu-3": lambda: InfiniteNetworkClassifier("relu", depth=3),  # complement solver
    "relu-inf": lambda: InfiniteNetworkClassifier("relu", depth=math.inf),  # majority
    "erf-1-nngp": lambda: InfiniteNetworkClassifier("erf", kernel="nngp", depth=1),
    "erf-inf": lambda: InfiniteNetworkClassifier("erf", depth=math.inf),  # singular
    "designed-3": lambda: InfiniteNetworkClassifier(DESIGNED, depth=3),
    "designed-inf": lambda: InfiniteNetworkClassifier(DESIGNED, kernel="nngp", depth=math.inf),
    "callable-2": lambda: InfiniteNetworkClassifier(CALLABLE, depth=2),
    "softplus-inf": lambda: InfiniteNetworkClassifier("softplus", depth=math.inf),  # psi
    "sine-params": lambda: InfiniteNetworkClassifier(
        "sine_family", activation_params={"a": 2.0}, depth=4),
    "hilbert": lambda: SingularKernelClassifier(alpha=2.0),
    "pipeline": lambda: make_pipeline(
        SphereProjection(bias=0.5), InfiniteNetworkClassifier("erf", depth=3, projection=None)),
}


def _data(n=30, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    codes = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (X[:, 2] > 0.8)
    y = np.array(["a", "b", "c"])[codes]
    return X, y, rng.standard_normal((12, 3))


def _fit(case):
    X, y, T = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        return CASES[case]().fit(X, y), T


def _outputs(model, T):
    return model.predict(T), model.predict_proba(T), model.decision_function(T)


def _skops_loads(data):
    untrusted = sio.get_untrusted_types(data=data)
    # only infdepth's own classes (and the user's module-level phi) need trusting
    assert all(t.startswith("infdepth.") or t == f"{__name__}.phi" for t in untrusted)
    return sio.loads(data, trusted=untrusted)


def _joblib_dumps(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


#: (dumps, loads) of each format
FORMATS = {
    "pickle": (pickle.dumps, pickle.loads),
    "joblib": (_joblib_dumps, lambda data: joblib.load(io.BytesIO(data))),
    "skops": (sio.dumps, _skops_loads),
}


def _round_trip(how, model):
    dumps, loads = FORMATS[how]
    return loads(dumps(model))


def _classifier(model):
    return model[-1] if hasattr(model, "steps") else model


def _activations_of(model):
    clf = _classifier(model)
    return [clf._activation()] if isinstance(clf, InfiniteNetworkClassifier) else []


@pytest.mark.parametrize("how", sorted(FORMATS))
@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_predicts_bitwise_the_same(case, how, monkeypatch):
    model, T = _fit(case)
    before = _outputs(model, T)
    dumps, loads = FORMATS[how]
    data = dumps(model)
    for act in _activations_of(model):  # as in a fresh process: no table in memory
        monkeypatch.setattr(act, "_cache", {})
    builds = []
    original_build = KernelFunction._build
    monkeypatch.setattr(KernelFunction, "_build",
                        lambda self: builds.append(self) or original_build(self))
    loaded = loads(data)
    after = _outputs(loaded, T)
    assert builds == [], f"loading rebuilt {builds}"
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert type(loaded) is type(model)
    clf, new = _classifier(model), _classifier(loaded)
    assert new.get_params(deep=False).keys() == clf.get_params(deep=False).keys()
    np.testing.assert_array_equal(new.classes_, clf.classes_)


@pytest.mark.parametrize("case", ["designed-3", "erf-inf", "pipeline"])
def test_deepcopy_predicts_bitwise_the_same(case):
    model, T = _fit(case)
    for a, b in zip(_outputs(model, T), _outputs(copy.deepcopy(model), T), strict=True):
        np.testing.assert_array_equal(a, b)


def test_build_counter_sees_builds(monkeypatch):
    """The counter of the test above works: an empty cache does rebuild."""
    act = infdepth.activation("erf")
    monkeypatch.setattr(act, "_cache", {})
    builds = []
    original_build = KernelFunction._build
    monkeypatch.setattr(KernelFunction, "_build",
                        lambda self: builds.append(self) or original_build(self))
    infdepth.kernel_function(act, "ntk", 3)
    assert len(builds) == 1


@pytest.mark.parametrize("case", ["designed-3", "callable-2", "erf-inf"])
def test_rebuilt_activation_is_the_same_activation(case):
    model, _ = _fit(case)
    act = model._activation()
    loaded = pickle.loads(pickle.dumps(model))._activation()
    assert loaded.name == act.name
    x = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(loaded(x), act(x))  # phi itself, bitwise
    xi = np.linspace(-1, 1, 9)
    np.testing.assert_array_equal(loaded.dual(xi), act.dual(xi))
    assert loaded.dual_error == act.dual_error
    assert infdepth.limit(loaded, oscillation=False).kind == infdepth.limit(
        act, oscillation=False).kind


def test_fused_lookup_table_travels_with_the_model():
    """Training sets from FAST_MIN_TRAIN points on use a fused pass with its own table."""
    from infdepth.estimators.compiled import FAST_MIN_TRAIN
    from infdepth.estimators.compiled import compiled_kernels as _kernels

    if _kernels() is None:
        pytest.skip("the fused pass needs numba")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((FAST_MIN_TRAIN + 10, 3))
    y = (X[:, 0] > 0).astype(int)
    T = rng.standard_normal((5, 3))
    model = SingularKernelClassifier(alpha=2.0).fit(X, y)
    before = model.predict_proba(T)
    tables = {k: v for k, v in model._cache.items() if isinstance(k, tuple)}
    assert tables  # the prediction built one
    loaded = pickle.loads(pickle.dumps(model))
    for key, table in tables.items():
        np.testing.assert_array_equal(loaded._cache[key].coefs, table.coefs)
    np.testing.assert_array_equal(loaded.predict_proba(T), before)


def local_lambda_activation():
    return infdepth.Activation.from_callable(lambda x: np.tanh(x) + 0.2 * x, name="mine")


@pytest.mark.parametrize("how", ["pickle", "joblib", "skops"])
def test_lambda_activation_fails_clearly(how):
    X, y, _ = _data()
    model = InfiniteNetworkClassifier(local_lambda_activation(), depth=2).fit(X, y)
    with pytest.raises(pickle.PicklingError, match="'mine'.*lambda or local function.*"
                       "module-level function"):
        FORMATS[how][0](model)
    # unfitted too: the activation is a parameter
    with pytest.raises(pickle.PicklingError, match="lambda"):
        FORMATS[how][0](InfiniteNetworkClassifier(local_lambda_activation()))


def test_lambda_activation_still_copies_and_cloudpickles():
    """deepcopy and cloudpickle (Dask, joblib workers) store the lambda by value."""
    import cloudpickle

    X, y, T = _data()
    model = InfiniteNetworkClassifier(local_lambda_activation(), depth=2).fit(X, y)
    expected = model.predict_proba(T)
    for copied in (copy.deepcopy(model), cloudpickle.loads(cloudpickle.dumps(model))):
        np.testing.assert_array_equal(copied.predict_proba(T), expected)


FRESH = textwrap.dedent("""
    import sys, joblib, numpy as np
    from infdepth import KernelFunction

    def refuse(self):
        raise AssertionError(f"rebuilt {self!r}")

    KernelFunction._build = refuse
    models, T, expected = joblib.load(sys.argv[1])
    for name, model in models.items():
        for got, want in zip((model.predict(T), model.predict_proba(T)), expected[name]):
            assert np.array_equal(got, want), name
    print("ok", len(models))
""")


def test_fresh_process_loads_without_building_tables(tmp_path):
    cases = ["erf-inf", "designed-3", "relu-3", "softplus-inf", "pipeline"]
    models, expected, T = {}, {}, None
    for case in cases:
        models[case], T = _fit(case)
        expected[case] = (models[case].predict(T), models[case].predict_proba(T))
    path = tmp_path / "models.joblib"
    joblib.dump((models, T, expected), path)
    script = tmp_path / "load.py"
    script.write_text(FRESH)
    done = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == f"ok {len(cases)}"


def test_pickles_of_version_0_1_0_load_and_predict_as_then():
    """tests/data/estimators_0_1_0.pkl was written by infdepth 0.1.0 (commit 48ed88f, one
    file estimators.py): fitted estimators, test points and their predictions then. After
    the package layout of 0.2 they load (class paths and ``_scaled_call`` are kept) and
    predict the same labels; probabilities agree to the tables' accuracy (tables are
    rebuilt on this machine, 1e-12 relative by design, so 1e-9 is generous)."""
    import pathlib

    blob = pickle.loads((pathlib.Path(__file__).parent / "data" / "estimators_0_1_0.pkl")
                        .read_bytes())
    assert blob["version"] == "0.1.0"
    for name, (data, labels, proba) in blob["models"].items():
        model = pickle.loads(data)
        np.testing.assert_array_equal(model.predict(blob["Q"]), labels, err_msg=name)
        np.testing.assert_allclose(model.predict_proba(blob["Q"]), proba, rtol=1e-9,
                                   atol=1e-12, err_msg=name)


@pytest.mark.parametrize("name, kind", [("relu", "ntk"), ("erf", "nngp")])
def test_tables_in_the_format_before_lazy_value_cells_load(name, kind, monkeypatch):
    """Until 2026-12-04 a persisted kernel table held its value cells as
    ``_value_table`` (built eagerly, no ``_value_fit``), no ``activation_name``, and its
    CubicTable objects had no ``apart``. A state in that format (made here from a
    current one; checked once by hand against a pickle written by commit 6b8aa1c) loads
    without building a table and predicts the same probabilities bitwise."""
    from infdepth.estimators.persistence import TABLES_KEY
    from infdepth.kernels.tables import CubicTable

    X, y, Q = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        model = InfiniteNetworkClassifier(name, kernel=kind, depth=3).fit(X, y)
    want = model.predict_proba(Q)
    assert infdepth.kernel_function(name, kind, 3)._value_table is not None  # (the old
    state = model.__getstate__()  # format always had the value cells)
    old = []
    for k, depth, attrs in state[TABLES_KEY]["kernel"]:
        attrs = dict(attrs)
        cells = attrs.pop("_value_cells")
        legacy = CubicTable.__new__(CubicTable)
        legacy.__setstate__({a: v for a, v in vars(cells).items() if a != "apart"})
        attrs["_value_table"] = legacy
        del attrs["_value_fit"], attrs["activation_name"]
        old.append((k, depth, attrs))
    assert old, "the model persists its kernel table"
    state[TABLES_KEY] = {**state[TABLES_KEY], "kernel": old}
    act = infdepth.activation(name)
    monkeypatch.setattr(act, "_cache", {})
    builds = []
    original_build = KernelFunction._build
    monkeypatch.setattr(KernelFunction, "_build",
                        lambda self: builds.append(self) or original_build(self))
    loaded = InfiniteNetworkClassifier.__new__(InfiniteNetworkClassifier)
    loaded.__setstate__(state)
    np.testing.assert_array_equal(loaded.predict_proba(Q), want)
    assert builds == []
    assert repr(act._cache[(kind, 3)]).startswith(f"KernelFunction({act.name!r}")
