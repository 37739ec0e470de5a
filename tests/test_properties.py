"""Property-based tests (Hypothesis) of the public API.

Every property is checked against something computed independently of the code under
test: a second evaluation on transformed input (rotated, permuted, duplicated, relabelled
data), an exact identity (symmetry, k(1) = 1, Cauchy-Schwarz, positive semi-definiteness,
monotonicity of compositions of increasing duals), or the classification of a dual from
its coefficients written out again here.

Inputs are drawn from the whole float64 range where the property is about bad input
(NaN, infinities, 1e308, subnormals): the contract is a finite result or a ValueError,
never a NaN, an infinity that is not mathematically there, or an exception from inside
numpy. Examples are derandomized by the ``ci`` profile of ``conftest.py``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import ortho_group

import infdepth
from infdepth import (
    InfiniteNetworkClassifier,
    Kernel,
    SingularKernelClassifier,
    SphereProjection,
)
from infdepth.estimators import IllConditionedGramWarning
from infdepth.kernels.gram import UNIT_NORM_TOL

DESIGNED = infdepth.design_activation(dimension=3)  # 0.61 xi + 0.39 xi^2: singular, no parity
ACTIVATIONS = {"relu": "relu", "erf": "erf", "designed": DESIGNED}
DEPTHS = [1, 3, math.inf]
FEW = settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
SOME = settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])

act_names = st.sampled_from(sorted(ACTIVATIONS))
depths = st.sampled_from(DEPTHS)
kinds = st.sampled_from(["nngp", "ntk"])
any_float = st.floats(allow_nan=True, allow_infinity=True)
finite_float = st.floats(allow_nan=False, allow_infinity=False)
unit_interval = st.floats(-1.0, 1.0)


def _act(name):
    return ACTIVATIONS[name]


def _parity(name) -> int:
    act = infdepth.activation(name) if isinstance(_act(name), str) else _act(name)
    return act.dual_function.parity


def _is_kernel(name, depth) -> bool:
    """ReLU's infinitely deep network is the majority vote, not a kernel."""
    return not (name == "relu" and depth == math.inf)


# =========================================================================== kernel values
@FEW
@given(name=act_names, kind=kinds, depth=depths,
       xi=st.lists(st.one_of(unit_interval, any_float), max_size=6))
def test_kernel_values_finite_or_value_error(name, kind, depth, xi):
    fn = infdepth.nngp if kind == "nngp" else infdepth.ntk
    x = np.array(xi, dtype=float)
    bad = ~np.isfinite(x) | (np.abs(x) > 1 + 2e-12)
    borderline = np.isfinite(x) & (np.abs(x) > 1 + 0.5e-12) & ~bad
    assume(not np.any(borderline))  # the stated tolerance is 1e-12
    if np.any(bad) or not _is_kernel(name, depth):
        with pytest.raises(ValueError) as info:
            fn(x, _act(name), depth)
        assert type(info.value) is ValueError
        if _is_kernel(name, depth):
            assert "inner products" in str(info.value)
        else:
            assert "majority vote" in str(info.value)
        return
    k = fn(x, _act(name), depth)
    assert k.shape == x.shape
    assert not np.any(np.isnan(k))
    at_one = x >= 1.0
    if depth == math.inf:  # the Koenigs function: h(1) = inf, finite inside (-1, 1)
        assert np.all(np.isposinf(k[at_one]))
        assert np.all(np.isfinite(k[~at_one]))
    else:  # normalized positive semi-definite kernel: k(1) = 1, |k| <= 1
        assert np.all(np.isfinite(k))
        np.testing.assert_allclose(k[at_one], 1.0, rtol=0, atol=1e-12)
        assert np.all(np.abs(k) <= 1 + 1e-12)
    sign, logabs = fn(x, _act(name), depth, log=True)
    with np.errstate(over="ignore"):
        again = sign * np.exp(logabs)
    np.testing.assert_allclose(again, k, rtol=1e-12, atol=0)


@FEW
@given(name=st.sampled_from(["relu", "erf"]), kind=kinds, depth=depths,
       xi=st.lists(st.floats(-1.0, 1.0), min_size=2, max_size=8))
def test_kernel_of_increasing_duals_is_increasing(name, kind, depth, xi):
    """ReLU and erf duals are increasing on [-1, 1], with dual' > 0 increasing on [0, 1]:
    S_L is increasing, and so is K_L = S_L + K_{L-1} dual'(S_{L-1}) on [0, 1] (a sum of
    products of non-negative increasing functions); erf's kernels are odd, hence
    increasing on [-1, 1]. (ReLU's depth-1 NTK dips below 0 near xi = -1.)"""
    assume(_is_kernel(name, depth))
    x = np.sort(np.array(xi))
    if depth == math.inf:
        x = x[np.abs(x) < 1]  # h(+-1) = +-inf
    if kind == "ntk" and name == "relu":
        x = x[x >= 0]
    fn = infdepth.nngp if kind == "nngp" else infdepth.ntk
    k = fn(x, name, depth)
    assert np.all(np.diff(k) >= -1e-12 * np.maximum(1.0, np.abs(k[1:])))
    if name == "erf":  # odd dual: odd kernel (to the table's 1e-12 accuracy)
        np.testing.assert_allclose(fn(-x, name, depth), -k, rtol=1e-12, atol=0)


# =========================================================================== Gram matrices
def _unit_rows(draw_array) -> np.ndarray:
    X = np.array(draw_array, dtype=float)
    norms = np.linalg.norm(X, axis=1)
    X[norms == 0] = 0.0
    X[norms == 0, 0] = 1.0
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@st.composite
def unit_data(draw, max_rows=7):
    d = draw(st.integers(2, 4))
    elements = st.floats(-4, 4, allow_subnormal=False).map(lambda v: round(v, 3))
    X = draw(hnp.arrays(np.float64, (draw(st.integers(1, max_rows)), d), elements=elements))
    Z = draw(hnp.arrays(np.float64, (draw(st.integers(1, max_rows)), d), elements=elements))
    seed = draw(st.integers(0, 2**32 - 1))
    return _unit_rows(X), _unit_rows(Z), ortho_group.rvs(d, random_state=seed)


def _antipodal_pair(X, Z) -> bool:
    S = X[:, None, :] + Z[None, :, :]
    return bool(np.any(np.einsum("ijk,ijk->ij", S, S) == 0))


def _rotate(X, Q):
    """Rows x -> Q x, normalized, by the same elementwise operations for every row (so
    rows equal before are equal after, whichever matrix they are in)."""
    Y = sum(X[:, j, None] * Q[:, j][None, :] for j in range(X.shape[1]))
    return Y / np.sqrt(np.sum(Y * Y, axis=1, keepdims=True))


@FEW
@given(name=act_names, kind=kinds, depth=depths, data=unit_data())
def test_gram_symmetric_rotation_invariant_psd(name, kind, depth, data):
    assume(_is_kernel(name, depth))
    X, Z, Q = data
    if depth == math.inf and _parity(name) == -1:
        assume(not _antipodal_pair(X, Z) and not _antipodal_pair(X, X))
    kern = Kernel(_act(name), kind=kind, depth=depth, coincident="inf")  # +inf at x = z
    XR, ZR = _rotate(X, Q), _rotate(Z, Q)
    if depth == math.inf:  # h is +inf on coinciding points, steep near them
        with np.errstate(over="ignore"):
            H = kern(X, Z)
            for other in (kern(Z, X).T, kern(XR, ZR)):
                inf = np.isposinf(H)
                np.testing.assert_array_equal(np.isposinf(other), inf)
                np.testing.assert_allclose(other[~inf], H[~inf], rtol=1e-7, atol=1e-12)
        return
    K = kern(X, Z)
    np.testing.assert_allclose(kern(Z, X).T, K, rtol=0, atol=1e-12)
    np.testing.assert_allclose(kern(XR, ZR), K, rtol=0, atol=1e-9)
    G = kern(X)
    np.testing.assert_allclose(G, G.T, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.diag(G), 1.0, rtol=0, atol=1e-12)
    w = np.linalg.eigvalsh((G + G.T) / 2)
    assert w[0] >= -1e-9 * max(w[-1], 1.0)


@FEW
@given(name=act_names, kind=kinds, depth=st.sampled_from([1, 2, 5]), data=unit_data())
def test_float32_gram_is_float64_up_to_the_inner_products_rounding(name, kind, depth, data):
    """dtype="float32": the same infinities, and every entry within the kernel's change
    over the float32 inner product's rounding (bounded by finite differences of k)."""
    assume(_is_kernel(name, depth))
    X, Z, _ = data
    K64 = Kernel(_act(name), kind=kind, depth=depth)(X, Z)
    K32 = Kernel(_act(name), kind=kind, depth=depth, dtype="float32")(X, Z)
    assert K32.dtype == np.float32
    xi = np.clip(X @ Z.T, -1, 1)
    step = 64 * np.finfo(np.float32).eps  # d <= 6: a few float32 roundings of <x, z>
    fn = Kernel(_act(name), kind=kind, depth=depth).function
    spread = np.abs(fn(np.clip(xi + step, -1, 1)) - fn(np.clip(xi - step, -1, 1)))
    near = 1 - np.abs(xi) < Kernel.FLOAT32_NEAR_GAP  # computed in float64
    bound = np.where(near, 0.0, spread) + 2 * np.finfo(np.float32).eps * np.abs(K64) + 1e-30
    assert np.all(np.abs(K32.astype(float) - K64) <= bound)


def test_nearly_unit_rows_are_renormalized():
    """One tolerance (UNIT_NORM_TOL) for every entry point; accepted rows are renormalized,
    so the Gram matrix equals that of the exactly normalized rows."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((20, 4))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    scaled = X * (1 + 0.5 * UNIT_NORM_TOL * rng.uniform(-1, 1, (20, 1)))
    kernel = Kernel("erf", "nngp", 3)
    np.testing.assert_allclose(kernel(scaled), kernel(X), rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match="unit vectors"):
        kernel(X * (1 + 2 * UNIT_NORM_TOL))
    clf = InfiniteNetworkClassifier("erf", projection=None).fit(scaled, np.arange(20) % 2)
    np.testing.assert_allclose(np.linalg.norm(clf.X_fit_, axis=1), 1, rtol=4e-16)


@FEW
@given(name=act_names, depth=st.sampled_from([1, 3]),
       X=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=4),
                    elements=any_float))
def test_gram_rejects_non_unit_rows(name, depth, X):
    with np.errstate(over="ignore"):
        norms = np.sqrt(np.einsum("ij,ij->i", X, X)) if np.all(np.isfinite(X)) else None
    assume(norms is None or np.any(~(np.abs(norms - 1) <= UNIT_NORM_TOL)))
    with pytest.raises(ValueError, match="unit vectors|NaN or infinity") as info:
        Kernel(_act(name), depth=depth)(X)
    assert type(info.value) is ValueError


# =========================================================================== estimators
ESTIMATORS = [(name, depth) for name in sorted(ACTIVATIONS) for depth in DEPTHS]


def _make(spec, **kw):
    if spec == "hilbert":
        return SingularKernelClassifier(alpha=2.0, **kw)
    name, depth = spec
    return InfiniteNetworkClassifier(_act(name), depth=depth, **kw)


estimator_specs = st.sampled_from(ESTIMATORS + ["hilbert"])


def _check_outputs(clf, X):
    P = clf.predict_proba(X)
    D = clf.decision_function(X)
    p = clf.predict(X)
    assert np.all(np.isfinite(P)) and np.all(np.isfinite(D))
    assert np.all((P >= 0) & (P <= 1))
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(p, clf.classes_[np.argmax(P, axis=1)])
    return P


@SOME
@given(spec=estimator_specs,
       X=hnp.arrays(np.float64, st.tuples(st.integers(2, 8), st.integers(1, 3)),
                    elements=st.one_of(st.floats(-3, 3), finite_float)),
       T=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.just(3)),
                    elements=finite_float),
       codes=st.lists(st.integers(0, 2), min_size=6, max_size=6))
def test_estimators_finite_or_value_error(spec, X, T, codes):
    """Any finite data: finite probabilities that sum to 1, or a ValueError that says why."""
    y = np.array([0, 1] + codes)[: X.shape[0]]
    T = T[:, : X.shape[1]]
    clf = _make(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        try:
            clf.fit(X, y)
        except ValueError as exc:
            assert type(exc) is ValueError and "overflows float64" in str(exc)
            return
        _check_outputs(clf, X)
        try:
            _check_outputs(clf, T)
        except ValueError as exc:
            assert type(exc) is ValueError and "overflows float64" in str(exc)


@st.composite
def datasets(draw, max_n=12):
    """Well-spread data (Gaussian, from a drawn seed) with every class present."""
    n = draw(st.integers(4, max_n))
    d = draw(st.integers(1, 3))
    n_classes = draw(st.integers(2, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.standard_normal((n, d))
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n - n_classes)])
    T = np.vstack([X[: min(n, 3)], rng.standard_normal((6, d))])  # includes coincidences
    return X, y, T


def _margin(P):
    top2 = np.sort(P, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def _fit(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        return clf.fit(X, y)


#: Relative accuracy the kernel tables are built to (infdepth.kernels), stated again here.
TABLE_RTOL = 1e-12


def _tolerance(clf) -> float:
    """How far two fits may disagree: rounding for the depth-infinity rules; at finite
    depth the kernel tables' relative accuracy (TABLE_RTOL per entry, so n TABLE_RTOL in
    norm) times the condition number of the Gram matrix on the directions that accuracy
    resolves (a solver that kept the others would amplify table error and fail here)."""
    if isinstance(clf, SingularKernelClassifier) or clf.depth == math.inf:
        return 1e-12
    G = Kernel(clf.activation, clf.kernel, clf.depth)(clf.X_fit_)
    w = np.linalg.eigvalsh((G + G.T) / 2)
    n = w.size
    kept = w[w > n * TABLE_RTOL * w[-1]]
    return max(1e-9, 10 * n * TABLE_RTOL * w[-1] / kept[0])


def _same_predictions(P, p, P2, p2, atol):
    np.testing.assert_allclose(P2, P, rtol=0, atol=atol)
    clear = _margin(P) > 10 * atol
    np.testing.assert_array_equal(p2[clear], p[clear])


@FEW
@given(spec=estimator_specs, data=datasets(), perm_seed=st.integers(0, 2**32 - 1))
def test_permuting_training_points_changes_nothing(spec, data, perm_seed):
    X, y, T = data
    perm = np.random.default_rng(perm_seed).permutation(len(y))
    a = _fit(_make(spec), X, y)
    b = _fit(_make(spec), X[perm], y[perm])
    _same_predictions(a.predict_proba(T), a.predict(T), b.predict_proba(T), b.predict(T),
                      _tolerance(a))


@FEW
@given(spec=st.sampled_from([(n, math.inf) for n in sorted(ACTIVATIONS)] + ["hilbert"]),
       kernel=kinds, data=datasets())
def test_duplicating_training_set_changes_nothing_at_depth_infinity(spec, kernel, data):
    """The depth-infinity rules are votes normalized by the total weight (or the nearest
    neighbour, or the majority): doubling every training point cancels out."""
    X, y, T = data
    kw = {} if spec == "hilbert" else {"kernel": kernel}
    a = _fit(_make(spec, **kw), X, y)
    b = _fit(_make(spec, **kw), np.vstack([X, X]), np.concatenate([y, y]))
    assert a.rule_ == b.rule_

    def share(model):  # predict_proba before its Laplace smoothing, which depends on n
        n, k = model.X_fit_.shape[0], model.classes_.size
        return (model.predict_proba(T) * (n + k) - 1) / n

    _same_predictions(share(a), a.predict(T), share(b), b.predict(T), 1e-12)


@FEW
@given(spec=estimator_specs, data=datasets(), perm_seed=st.integers(0, 2**32 - 1),
       as_strings=st.booleans())
def test_relabelling_commutes_with_prediction(spec, data, perm_seed, as_strings):
    X, y, T = data
    k = int(y.max()) + 1
    new = np.random.default_rng(perm_seed).permutation(k) + 10
    new = np.array([f"class-{v}" for v in new]) if as_strings else new
    a = _fit(_make(spec), X, y)
    b = _fit(_make(spec), X, new[y])
    P, p = a.predict_proba(T), a.predict(T)
    order = np.searchsorted(b.classes_, new[a.classes_])  # column of a's class c in b
    np.testing.assert_array_equal(b.classes_[order], new[a.classes_])
    _same_predictions(P, new[p], b.predict_proba(T)[:, order], b.predict(T), _tolerance(a))


# =========================================================================== projection
@FEW
@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 3)),
                    elements=finite_float),
       bias=st.sampled_from([0.0, 1.0, 2.5]), standardize=st.booleans())
def test_sphere_projection_gives_unit_rows_or_value_error(X, bias, standardize):
    proj = SphereProjection(standardize=standardize, bias=bias)
    try:
        Z = proj.fit_transform(X)
    except ValueError as exc:
        assert standardize and "overflows float64" in str(exc)
        return
    assert Z.shape == (X.shape[0], X.shape[1] + (bias > 0))
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=0, atol=1e-12)


@FEW
@given(data=datasets(), scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_sphere_projection_matches_formula_and_ignores_affine_maps(data, scale, shift):
    X = data[0]
    Z = SphereProjection().fit_transform(X)
    std = X.std(axis=0)
    ref = np.hstack([(X - X.mean(axis=0)) / np.where(std > 0, std, 1.0),
                     np.ones((X.shape[0], 1))])
    np.testing.assert_allclose(Z, ref / np.linalg.norm(ref, axis=1, keepdims=True),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(SphereProjection().fit_transform(X * scale + shift), Z,
                               rtol=0, atol=1e-9)


# =========================================================================== taxonomy
def _classify_by_hand(c):
    """docs/theory.md section 4 from the dual coefficients c_k (normalized, trimmed at 1e-20)."""
    c = np.asarray(c, dtype=float) / np.sum(c)
    c[c < 1e-20] = 0.0
    c = c / c.sum()
    v0 = c[0]
    c0 = c[1] if c.size > 1 else 0.0
    m = float(np.sum(np.arange(c.size) * c))
    return v0, c0, m


@FEW
@given(coef=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6))
def test_limit_of_polynomial_duals_matches_the_coefficients(coef):
    total = sum(coef)
    if not total > 0:
        with pytest.raises(ValueError):
            infdepth.limit(infdepth.Activation.from_dual_coefficients(coef))
        return
    v0, c0, m = _classify_by_hand(coef)
    assume(not (1e-13 < abs(m - 1) < 1e-10))  # the stated slope tolerance is 1e-12
    act = infdepth.Activation.from_dual_coefficients(coef)
    if c0 == 1.0 or m == 0:  # the identity xi, or a constant dual
        with pytest.raises(ValueError, match="linear|constant"):
            infdepth.limit(act, oscillation=False)
        return
    record = infdepth.limit(act, oscillation=False)
    if abs(m - 1) <= 1e-12:
        expected = "majority_vote"
    elif m < 1:
        expected = "psi_interpolation"
    elif v0 > 1e-20:
        expected = "majority_vote"
    elif c0 > 1e-20:
        expected = "singular"
    else:
        expected = "nearest_neighbor"
    assert record.kind == expected
    assert math.isclose(record.m, m, rel_tol=1e-12)
    if expected == "singular":
        assert math.isclose(record.alpha, 2 * math.log(1 / c0) / math.log(m), rel_tol=1e-9)


@FEW
@given(scale=st.floats(1e-3, 1e3))
def test_limit_of_erf_is_singular_with_the_closed_form_exponent(scale):
    b = 2 * scale**2 / (1 + 2 * scale**2)  # dual = arcsin(b xi) / arcsin(b)
    c0 = b / math.asin(b)
    m = b / math.sqrt(1 - b * b) / math.asin(b)
    record = infdepth.limit("erf", scale=scale, oscillation=False)
    assert record.kind == "singular" and record.parity == -1
    assert math.isclose(record.alpha, 2 * math.log(1 / c0) / math.log(m), rel_tol=1e-9)


@FEW
@given(slope=st.floats(-1e100, 1e100))
def test_limit_of_leaky_relu_is_the_majority_vote(slope):
    if slope == 1:
        with pytest.raises(ValueError, match="linear"):
            infdepth.limit("leaky_relu", slope=slope, oscillation=False)
        return
    record = infdepth.limit("leaky_relu", slope=slope, oscillation=False)
    assert record.kind == "majority_vote" and record.m == 1.0


@FEW
@given(value=any_float)
def test_bad_activation_parameters_raise_value_error(value):
    assume(not (math.isfinite(value) and value > 0))
    for name, key in (("erf", "scale"), ("sine_family", "a")):
        with pytest.raises(ValueError):
            infdepth.limit(name, oscillation=False, **{key: value})


# =========================================================================== known defects
def test_kernels_at_exactly_antipodal_points(monkeypatch):
    """-1 is a fixed point of a dual with a parity: k(-1) = parity * k(1), no recursion."""
    import infdepth.dynamics

    infdepth.nngp(np.array([0.5]), "erf", math.inf)  # the table itself
    monkeypatch.setattr(infdepth.dynamics, "MAX_STEPS", 2000)  # a recursion would fail fast
    assert infdepth.nngp(np.array([-1.0]), "erf", math.inf)[0] == -math.inf
    x = np.array([[1.0, 0.0]])
    for name, parity in (("erf", -1), ("abs", 1)):
        for kind in ("nngp", "ntk"):
            for depth in (1, 7):
                # the recursion written out: S -> dual(S), K -> dual(S) + K dual'(S)
                act = infdepth.activation(name)
                S = K = -1.0
                norm_S = norm_K = 1.0
                for _ in range(depth):
                    S, K = act.dual(S), act.dual(S) + K * act.dual_derivative(S)
                    norm_S, norm_K = act.dual(norm_S), (act.dual(norm_S)
                                                        + norm_K * act.dual_derivative(norm_S))
                expected = S / norm_S if kind == "nngp" else K / norm_K
                assert expected == pytest.approx(parity)
                got = infdepth.Kernel(name, kind, depth)(x, -x)[0, 0]
                assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name, params", [("leaky_relu", {"slope": 1e300}),
                                          ("erf", {"scale": 1e300})])
def test_huge_activation_parameters(name, params):
    with pytest.raises(ValueError):
        infdepth.activation(name, **params)
