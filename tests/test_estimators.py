"""scikit-learn estimators: conformance, independent cross-checks, limits, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

import infdepth
import infdepth.estimators.compiled as est_module
from infdepth.estimators import (
    IllConditionedGramWarning,
    InfiniteNetworkClassifier,
    SingularKernelClassifier,
    SphereProjection,
)

POLY3 = infdepth.Activation.from_dual_coefficients([0, 0.5, 0, 0.5], name="xi/2+xi^3/2")


def sphere(n, d, rng):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def labels(X):
    return (X[:, 0] + 0.5 * X[:, 1] ** 2 > 0.2).astype(int) + (X[:, 1] > 0.6)


# --------------------------------------------------------------------------- conformance
# check_array_api_input is skipped by scikit-learn itself (it needs SCIPY_ARRAY_API=1 and
# estimators declaring array-API support, which these numpy/numba estimators do not).
@parametrize_with_checks(
    [
        SphereProjection(),
        InfiniteNetworkClassifier(),
        InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf),
        InfiniteNetworkClassifier("softplus", kernel="ntk", depth=math.inf),
        SingularKernelClassifier(),
    ]
)
def test_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        # iris (used by some checks) has a duplicated row: the Gram fallback warns
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        check(estimator)


# --------------------------------------------------------------------------- finite depth
def brute_force_kernel(act, kind, depth, xi):
    """The depth recursion of docs/theory.md section 3, one layer at a time, from the dual."""
    S = np.clip(xi, -1, 1)
    K = S.copy()
    m = float(act.dual_derivative(1.0))
    D = 1.0
    for _ in range(depth):
        derivative = act.dual_derivative(S)
        S = act.dual(S)
        K = S + K * derivative
        D = 1.0 + m * D
        S = np.clip(S, -1, 1)
    return S if kind == "nngp" else K / D


def normalized(f):
    total = f.sum(axis=1)
    scale = np.where(total > 0, total, np.abs(f).max(axis=1))
    return f / scale[:, None]


@pytest.mark.parametrize(
    "name, kind, depth, ridge",
    [
        ("relu", "ntk", 3, 0.0),
        ("relu", "nngp", 2, 0.1),
        ("erf", "nngp", 2, 0.0),
        ("erf", "ntk", 4, 0.0),
        ("gelu", "ntk", 3, 0.0),
        ("softplus", "nngp", 3, 0.0),
        ("softplus", "ntk", 2, 0.01),
        ("tanh", "ntk", 1, 0.0),
    ],
)
def test_finite_depth_equals_explicit_gram_and_solve(name, kind, depth, ridge):
    rng = np.random.default_rng(1)
    X, Q = sphere(40, 5, rng), sphere(25, 5, rng)
    y = labels(X)
    clf = InfiniteNetworkClassifier(name, kernel=kind, depth=depth, ridge=ridge,
                                    projection=None).fit(X, y)
    act = infdepth.activation(name)
    K = brute_force_kernel(act, kind, depth, X @ X.T) + ridge * np.eye(len(X))
    Y = np.eye(3)[y]
    f = brute_force_kernel(act, kind, depth, Q @ X.T) @ np.linalg.solve(K, Y)
    assert clf.solver_ == "cholesky"
    np.testing.assert_allclose(clf.decision_function(Q), normalized(f), rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(clf.predict(Q), np.argmax(f, axis=1))


def test_binary_decision_function_is_the_plus_minus_one_network():
    rng = np.random.default_rng(2)
    X, Q = sphere(30, 4, rng), sphere(10, 4, rng)
    y = np.where(X[:, 0] > 0, "yes", "no")
    clf = InfiniteNetworkClassifier("erf", kernel="ntk", depth=3, projection=None).fit(X, y)
    act = infdepth.activation("erf")
    alpha = np.linalg.solve(brute_force_kernel(act, "ntk", 3, X @ X.T), np.eye(2)[(y == "yes") * 1])
    f = brute_force_kernel(act, "ntk", 3, Q @ X.T) @ alpha
    D = normalized(f)
    np.testing.assert_allclose(clf.decision_function(Q), D[:, 1] - D[:, 0], rtol=1e-7, atol=1e-9)
    assert list(clf.classes_) == ["no", "yes"]
    assert set(clf.predict(Q)) <= {"no", "yes"}
    P = clf.predict_proba(Q)
    share = np.clip((1 + D[:, 1] - D[:, 0]) / 2, 0, 1)
    np.testing.assert_allclose(P[:, 1], (30 * share + 1) / (30 + 2), atol=1e-9)  # Laplace


def test_near_singular_gram_falls_back_with_a_warning_and_no_nan():
    rng = np.random.default_rng(3)
    X = sphere(30, 4, rng)
    X = np.vstack([X, X[:3]])  # exact duplicates with conflicting labels
    y = np.r_[labels(X[:30]), [2, 2, 2]]
    y[:3] = [0, 1, 0]
    with pytest.warns(IllConditionedGramWarning, match="pseudo-inverse"):
        clf = InfiniteNetworkClassifier("erf", kernel="nngp", depth=10, projection=None).fit(X, y)
    assert clf.solver_ == "eigh" and clf.n_discarded_ >= 3
    P = clf.predict_proba(X)
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(clf.decision_function(X)))
    # a duplicated point predicts the mean of its labels: here classes 0/2 or 1/2 tie
    np.testing.assert_allclose(P[1], (33 * np.array([0, 0.5, 0.5]) + 1) / (33 + 3), atol=1e-6)


def test_ridge_regularizes_duplicates_without_warning():
    rng = np.random.default_rng(3)
    X = sphere(30, 4, rng)
    X = np.vstack([X, X[:3]])
    y = np.r_[labels(X[:30]), labels(X[:3])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", IllConditionedGramWarning)
        clf = InfiniteNetworkClassifier("erf", depth=10, ridge=1e-3, projection=None).fit(X, y)
    assert clf.solver_ == "cholesky"


# --------------------------------------------------------------------------- large depth
@pytest.mark.parametrize("act, kind", [("erf", "nngp"), (POLY3, "nngp")])
def test_large_depth_converges_to_the_singular_rule(act, kind):
    rng = np.random.default_rng(4)
    X, Q = sphere(150, 3, rng), sphere(300, 3, rng)
    y = labels(X)
    limit = InfiniteNetworkClassifier(act, kernel=kind, depth=math.inf, projection=None).fit(X, y)
    assert limit.rule_ == "singular"
    target = limit.predict(Q)
    agreement = []
    for depth in (10, 100, 1000, 10_000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", IllConditionedGramWarning)
            clf = InfiniteNetworkClassifier(act, kernel=kind, depth=depth, projection=None)
            agreement.append(np.mean(clf.fit(X, y).predict(Q) == target))
    assert agreement[-1] == 1.0 and agreement[-2] == 1.0
    assert agreement[0] <= agreement[-1]


def test_ntk_at_large_depth_agrees_with_its_limit():
    rng = np.random.default_rng(5)
    X, Q = sphere(100, 3, rng), sphere(200, 3, rng)
    y = labels(X)
    target = InfiniteNetworkClassifier("erf", "ntk", math.inf, projection=None).fit(X, y).predict(Q)
    finite = InfiniteNetworkClassifier("erf", "ntk", 10**6, projection=None).fit(X, y).predict(Q)
    assert np.mean(finite == target) >= 0.98


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_fourth_regime_limit_is_psi_interpolation(kind):
    """softplus: K_L = J - t Psi with t -> 0; the finite-depth solver converges to the
    bordered psi system, which is also checked against an explicit solve."""
    rng = np.random.default_rng(6)
    X, Q = sphere(60, 4, rng), sphere(100, 4, rng)
    y = labels(X)
    limit = InfiniteNetworkClassifier("softplus", kind, math.inf, projection=None).fit(X, y)
    assert limit.rule_ == "psi_interpolation"
    psi = infdepth.kernel_function("softplus", kind, math.inf)
    Psi = np.exp(psi.log_complement(np.clip(X @ X.T, -1, 1)))
    np.fill_diagonal(Psi, 0.0)
    n = len(X)
    A = np.block([[-Psi, np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    sol = np.linalg.solve(A, np.vstack([np.eye(3)[y], np.zeros((1, 3))]))
    psi_q = np.exp(psi.log_complement(np.clip(Q @ X.T, -1, 1)))
    f = -psi_q @ sol[:-1] + sol[-1]
    np.testing.assert_allclose(limit.decision_function(Q), normalized(f), rtol=1e-6, atol=1e-7)
    target = limit.predict(Q)
    agree = {}
    for depth in (5, 40, 400, 40_000):  # the NTK converges like 1/L, the NNGP like m^L
        clf = InfiniteNetworkClassifier("softplus", kind, depth, projection=None).fit(X, y)
        agree[depth] = np.mean(clf.predict(Q) == target)
    assert agree[40_000] == 1.0 and agree[5] <= agree[40_000]
    if kind == "nngp":
        assert agree[400] == 1.0
    # not the majority vote
    assert np.mean(target == np.bincount(y).argmax()) < 0.9


# --------------------------------------------------------------------------- depth infinity
def test_depth_infinity_rules_match_scikit_learn_baselines():
    rng = np.random.default_rng(7)
    X, Q = sphere(200, 5, rng), sphere(100, 5, rng)
    y = labels(X)
    majority = DummyClassifier(strategy="most_frequent").fit(X, y).predict(Q)
    for name in ("relu", "gelu", "abs"):
        clf = InfiniteNetworkClassifier(name, depth=math.inf, projection=None).fit(X, y)
        assert clf.rule_ == "majority_vote"
        np.testing.assert_array_equal(clf.predict(Q), majority)
    # even dual xi^2: nearest neighbour among the +-x_j, odd xi^3: antipode gives -y
    square = InfiniteNetworkClassifier("hermite", depth=math.inf, projection=None,
                                       activation_params={"degree": 2}).fit(X, y)
    assert square.rule_ == "nearest_neighbor"
    knn = KNeighborsClassifier(1).fit(np.vstack([X, -X]), np.r_[y, y])
    np.testing.assert_array_equal(square.predict(Q), knn.predict(Q))
    yb = (y > 0).astype(int)
    cube = InfiniteNetworkClassifier("hermite", depth=math.inf, projection=None,
                                     activation_params={"degree": 3}).fit(X, yb)
    knn = KNeighborsClassifier(1).fit(np.vstack([X, -X]), np.r_[yb, 1 - yb])
    np.testing.assert_array_equal(cube.predict(Q), knn.predict(Q))


def test_superattracting_large_finite_depth_uses_the_limit_when_everything_underflows():
    rng = np.random.default_rng(8)
    X, Q = sphere(50, 4, rng), sphere(40, 4, rng)
    y = labels(X)
    kw = dict(activation="hermite", activation_params={"degree": 2}, projection=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deep = InfiniteNetworkClassifier(depth=3000, **kw).fit(X, y)
        limit = InfiniteNetworkClassifier(depth=math.inf, **kw).fit(X, y)
        np.testing.assert_array_equal(deep.predict(Q), limit.predict(Q))
        assert np.all(np.isfinite(deep.predict_proba(Q)))


@pytest.mark.parametrize(
    "make",
    [
        lambda: InfiniteNetworkClassifier("erf", "nngp", math.inf, projection=None),
        lambda: InfiniteNetworkClassifier(POLY3, "ntk", math.inf, projection=None),
        lambda: InfiniteNetworkClassifier("relu", "ntk", math.inf, projection=None),
        lambda: InfiniteNetworkClassifier("softplus", "nngp", math.inf, projection=None),
        lambda: InfiniteNetworkClassifier("hermite", "nngp", math.inf, projection=None,
                                          activation_params={"degree": 2}),
        lambda: SingularKernelClassifier(alpha=3.0, projection=None),
    ],
)
def test_coincident_points_get_their_labels_exactly(make):
    rng = np.random.default_rng(9)
    X = sphere(60, 4, rng)
    y = labels(X)
    X = np.vstack([X, X[:2]])  # X[0], X[1] duplicated with other labels
    y = np.r_[y, (y[:2] + 1) % 3]
    clf = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no inf/nan arithmetic
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        clf.fit(X, y)
        P = clf.predict_proba(X[:10])
    expected = np.eye(3)[y[:10]]
    expected[0] = (np.eye(3)[y[0]] + np.eye(3)[y[60]]) / 2
    expected[1] = (np.eye(3)[y[1]] + np.eye(3)[y[61]]) / 2
    expected = (62 * expected + 1) / (62 + 3)  # Laplace-smoothed share, n = 62
    np.testing.assert_allclose(P, expected,
                               atol=1e-9 if clf.rule_ != "psi_interpolation" else 1e-6)


def test_odd_singular_kernel_flips_the_label_at_antipodes():
    rng = np.random.default_rng(10)
    X = sphere(40, 3, rng)
    y = (X[:, 0] > 0).astype(int)
    clf = InfiniteNetworkClassifier("erf", "nngp", math.inf, projection=None).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        np.testing.assert_array_equal(clf.predict(-X), 1 - y)
        np.testing.assert_allclose(clf.decision_function(-X), 1 - 2 * y)  # -(2y - 1)


def test_fused_path_equals_numpy_path_and_is_block_invariant(monkeypatch):
    rng = np.random.default_rng(11)
    X, Q = sphere(est_module.FAST_MIN_TRAIN + 500, 6, rng), sphere(300, 6, rng)
    Q[:3] = X[:3]  # coincident
    Q[3] = X[5] + 1e-9  # near pair
    y = labels(X)
    for clf in (
        InfiniteNetworkClassifier("erf", "nngp", math.inf, projection=None),
        InfiniteNetworkClassifier("sine_family", "ntk", math.inf, projection=None,
                                  activation_params={"a": 2.676}),
        SingularKernelClassifier(alpha=5.0, projection=None),
    ):
        Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        clf.fit(X, y)
        fast = clf.predict_proba(Qn)
        with config_context(working_memory=1):
            blocks = clf.predict_proba(Qn)
        pieces = np.vstack([clf.predict_proba(Qn[i:i + 7]) for i in range(0, len(Qn), 7)])
        np.testing.assert_array_equal(fast, blocks)
        np.testing.assert_array_equal(fast, pieces)
        monkeypatch.setattr(est_module, "FORCE_NUMPY", True)
        slow = clf.predict_proba(Qn)
        monkeypatch.setattr(est_module, "FORCE_NUMPY", False)
        np.testing.assert_allclose(fast, slow, atol=1e-10)
        np.testing.assert_array_equal(clf.predict(Qn[:3]), y[:3])


# --------------------------------------------------------------------------- Hilbert rule
def test_hilbert_rule_matches_normalized_weights():
    rng = np.random.default_rng(12)
    X, Q = sphere(80, 4, rng), sphere(30, 4, rng)
    y = labels(X)
    clf = SingularKernelClassifier(alpha=3.5, projection=None).fit(X, y)
    w = np.linalg.norm(Q[:, None, :] - X[None, :, :], axis=2) ** -3.5
    expected = np.stack([w[:, y == c].sum(1) for c in range(3)], axis=1) / w.sum(1, keepdims=True)
    np.testing.assert_allclose(clf.predict_proba(Q), (80 * expected + 1) / (80 + 3), rtol=1e-10)
    big = SingularKernelClassifier(alpha=5000.0, projection=None).fit(X, y)  # no overflow
    knn = KNeighborsClassifier(1).fit(X, y)
    np.testing.assert_array_equal(big.predict(Q), knn.predict(Q))


def test_hilbert_auto_alpha_is_the_intrinsic_dimension():
    rng = np.random.default_rng(13)
    X = sphere(1500, 5, rng)  # S^4: dimension 4
    clf = SingularKernelClassifier(projection=None, random_state=0).fit(X, labels(X))
    assert 3.4 < clf.alpha_ < 4.6
    assert clf.intrinsic_dimension_ == clf.alpha_


# --------------------------------------------------------------------------- projection
def test_sphere_projection():
    X = np.array([[0.0, 0.0], [1.0, -1.0], [3.0, 4.0], [6.0, 8.0], [1.5, 2.0]])
    proj = SphereProjection().fit(X)
    Z = proj.transform(X)
    assert Z.shape == (5, 3)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-15)
    assert not np.allclose(Z[2], Z[3])  # scaling is not collapsed
    assert list(proj.get_feature_names_out()) == ["x0", "x1", "bias"]
    raw = SphereProjection(standardize=False, bias=0.0).fit(X)
    Zr = raw.transform(np.vstack([X, [[1e300, -1e300]]]))
    np.testing.assert_allclose(Zr[0], [1.0, 0.0])  # zero row
    np.testing.assert_allclose(Zr[2], Zr[3])
    np.testing.assert_allclose(Zr[5], [2**-0.5, -(2**-0.5)])  # no overflow
    mean_row = SphereProjection().fit(X[2:]).transform(X[2:].mean(0, keepdims=True))
    np.testing.assert_allclose(mean_row, [[0.0, 0.0, 1.0]], atol=1e-15)
    with pytest.raises(ValueError, match="bias"):
        SphereProjection(bias=-1).fit(X)


def test_pipeline_and_projection_options():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    pipe = make_pipeline(SphereProjection(),
                         InfiniteNetworkClassifier("erf", depth=math.inf, projection=None))
    auto = InfiniteNetworkClassifier("erf", depth=math.inf).fit(X, y)
    np.testing.assert_array_equal(pipe.fit(X, y).predict(X), auto.predict(X))
    with pytest.raises(ValueError, match="unit vectors"):
        InfiniteNetworkClassifier(projection=None).fit(X, y)
    custom = InfiniteNetworkClassifier(projection=SphereProjection(bias=2.0)).fit(X, y)
    assert custom.projection_.bias == 2.0 and custom.score(X, y) == 1.0


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "clf",
    [InfiniteNetworkClassifier(), InfiniteNetworkClassifier("erf", depth=math.inf),
     SingularKernelClassifier(alpha=2.0)],
)
def test_bad_input_errors(clf):
    rng = np.random.default_rng(14)
    X, y = rng.standard_normal((20, 3)), np.arange(20) % 2
    with pytest.raises(NotFittedError):
        clf.predict(X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        clf.fit(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        clf.fit(bad, y)
    with pytest.raises(ValueError, match="class"):
        clf.fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="0 sample"):
        clf.fit(np.empty((0, 3)), np.empty(0))
    with pytest.raises(ValueError, match="could not convert"):
        clf.fit(np.array([["a", "b", "c"]] * 20), y)
    with pytest.raises(ValueError, match="Unknown label type"):
        clf.fit(X, rng.standard_normal(20))
    clf.fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :2])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.where(X > 1, np.nan, X))
    with pytest.raises(ValueError, match="2D"):
        clf.predict(X[0])


@pytest.mark.parametrize(
    "params",
    [dict(kernel="rbf"), dict(depth=-1), dict(depth=2.5), dict(ridge=-1.0),
     dict(activation="nope"), dict(projection="sphere"), dict(activation=3)],
)
def test_bad_parameters(params):
    X, y = np.eye(4), [0, 1, 0, 1]
    with pytest.raises((ValueError, TypeError)):
        InfiniteNetworkClassifier(**params).fit(X, y)


def test_labels_of_any_type_and_attributes():
    rng = np.random.default_rng(15)
    X = rng.standard_normal((30, 4))
    y = np.array(["cat", "dog", "emu"])[np.arange(30) % 3]
    clf = InfiniteNetworkClassifier("erf", depth=5).fit(X, y)
    assert clf.n_features_in_ == 4 and list(clf.classes_) == ["cat", "dog", "emu"]
    assert clf.score(X, y) == 1.0
    assert clf.predict_proba(X).shape == (30, 3)
    assert clf.decision_function(X).shape == (30, 3)
    P = clf.predict_proba(rng.standard_normal((50, 4)))
    np.testing.assert_allclose(P.sum(1), 1.0)
    assert np.all(P >= 0)


@pytest.mark.parametrize("name", ["erf", "relu", "gelu", "softplus", "hermite"])
def test_rule_is_spelled_as_the_taxonomy_kind(name):
    """One vocabulary: at depth infinity rule_ is limit().kind, the same string."""
    import pickle

    from infdepth.estimators import RULE_ALIASES, RULES
    from infdepth.taxonomy import KINDS

    params = {"degree": 2} if name == "hermite" else {}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = InfiniteNetworkClassifier(name, depth=math.inf, activation_params=params).fit(X, y)
    kind = infdepth.limit(infdepth.activation(name, **params), oscillation=False).kind
    assert clf.rule_ == kind
    assert set(KINDS) <= set(RULES) and not set(RULE_ALIASES) & set(RULES)
    # a pickle written with the old spelling loads with the new one
    state = clf.__getstate__()
    state["rule_"] = {v: k for k, v in RULE_ALIASES.items()}.get(kind, kind)
    old = pickle.loads(pickle.dumps(clf))
    old.__setstate__(state)
    assert old.rule_ == kind
    np.testing.assert_array_equal(old.predict(X), clf.predict(X))


def test_depth_infinity_probabilities_never_exactly_zero_and_calibrate():
    """A lopsided vote (erf at depth infinity on digits: before the fix 85% of the
    probabilities were exactly 0 or 1 on this split) gives no exact 0 or 1; the documented
    CalibratedClassifierCV route (temperature scaling) lowers the log loss further."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.datasets import load_digits
    from sklearn.metrics import log_loss
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    clf = InfiniteNetworkClassifier("erf", "nngp", math.inf).fit(Xtr, ytr)
    P = clf.predict_proba(Xte)
    assert not np.any((P == 0) | (P == 1))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[P.argmax(axis=1)], clf.predict(Xte))
    assert P[np.arange(yte.size), yte].min() >= 1 / (ytr.size + 10)  # the Laplace floor
    default = log_loss(yte, P)
    assert default < 0.6  # 1.08 with the unsmoothed vote shares on this split
    import sklearn

    method = ("temperature" if tuple(int(v) for v in sklearn.__version__.split(".")[:2])
              >= (1, 8) else "sigmoid")
    calibrated = CalibratedClassifierCV(
        InfiniteNetworkClassifier("erf", "nngp", math.inf), method=method, cv=3
    ).fit(Xtr, ytr)
    Pc = calibrated.predict_proba(Xte)
    assert log_loss(yte, Pc) < default
    assert np.mean(Pc.argmax(axis=1) == yte) > 0.85
