"""The kernel engine against mpmath and against the direct depth recursion."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from reference import DUALS, kernels, koenigs, polynomial_dual, sinh_dual

import infdepth
from infdepth import Activation, Kernel, activation, kernel_function, nngp, ntk
from infdepth.dynamics import iterate_depth

mp.mp.dps = 50

CUBIC = [0.0, 0.5, 0.0, 0.5]  # dual xi/2 + xi^3/2 (alpha = 2)


def make(name):
    """(Activation, mpmath dual, mpmath derivative) triples."""
    if name == "cubic":
        return (Activation.from_dual_coefficients(CUBIC), *polynomial_dual(CUBIC))
    if name == "sine":
        return (activation("sine_family", a=2.676), *sinh_dual("2.676"))
    return (activation(name), *DUALS[name])


POINTS = ["-0.999999", "-0.5", "0.3", "0.9", "0.999999999", "0.999999999999999"]


def mp_log_abs(x):
    return float(mp.log(abs(x)))


@pytest.mark.parametrize("name", ["relu", "erf", "cubic", "sine"])
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("depth", [1, 7, 100, 2000])
def test_table_matches_mpmath_recursion(name, kind, depth):
    act, dual, derivative = make(name)
    k = kernel_function(act, kind, depth)
    for point in POINTS:
        x = mp.mpf(point)
        S, K = kernels(x, dual, derivative, depth)
        ref = S if kind == "nngp" else K
        sign, logabs = k.log(float(x), float(1 - x), float(1 + x))
        assert float(sign) == float(mp.sign(ref))
        assert float(logabs) == pytest.approx(mp_log_abs(ref), abs=1e-9, rel=1e-12), point


@pytest.mark.parametrize("name", ["relu", "erf"])
def test_depth_ten_thousand_matches_mpmath(name):
    act, dual, derivative = make(name)
    mp.mp.dps = 30
    for kind in ("nngp", "ntk"):
        k = kernel_function(act, kind, 10_000)
        for point in ("0.5", "0.999999999999999")[: 1 if name == "relu" else 2]:
            x = mp.mpf(point)
            S, K = kernels(x, dual, derivative, 10_000)
            ref = S if kind == "nngp" else K
            _, logabs = k.log(float(x), float(1 - x), float(1 + x))
            assert float(logabs) == pytest.approx(mp_log_abs(ref), abs=1e-9, rel=1e-12)
    mp.mp.dps = 50


def dense_points(rng, n=4000):
    """Random xi in [-1, 1 - 1e-15] with log-uniform distance to +-1, and exact complements."""
    s = np.concatenate([rng.uniform(-34.5, 37, n), rng.uniform(-3, 3, n // 4)])
    delta = 2 / (1 + np.exp(-s))
    eps = 2 / (1 + np.exp(s))
    xi = -np.tanh(s / 2)
    return xi, delta, eps


@pytest.mark.parametrize(
    "name,params", [("relu", {}), ("erf", {}), ("tanh", {}), ("gelu", {}), ("softplus", {}),
                    ("sine_family", {"a": 13.8258}), ("abs", {}), ("hermite", {"degree": 2})],
)
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_table_matches_direct_recursion_everywhere(name, params, kind):
    """Relative accuracy 1e-9 (on log|k|) for xi in [-1, 1 - 1e-15], away from exact zeros."""
    rng = np.random.default_rng(1)
    act = activation(name, **params)
    xi, delta, eps = dense_points(rng)
    # ReLU-like (parabolic) tables cost O(depth) to build; tanh's dual has degree 223
    slow = infdepth.dynamics.find_attractor(act.dual_function).kind == "parabolic"
    for depth in (1, 3, 30, 300) if slow or name == "tanh" else (1, 3, 30, 300, 10_000):
        k = kernel_function(act, kind, depth)
        sign, logabs = k.log(xi, delta, eps)
        ref = k._direct(xi, delta, eps)
        finite = np.isfinite(ref[1])
        np.testing.assert_array_equal(np.isfinite(logabs), finite)
        # exclude a 1e-6 neighbourhood of sign changes (zeros of the kernel)
        order = np.argsort(xi)
        change = np.flatnonzero(np.diff(ref[0][order]) != 0)
        zeros = xi[order][change]
        away = np.ones(xi.size, bool)
        for z in zeros:
            away &= np.abs(xi - z) > 1e-6
        ok = finite & away
        assert np.all(sign[ok] == ref[0][ok])
        err = np.abs(logabs[ok] - ref[1][ok])
        tolerance = 1e-9 + 1e-13 * np.abs(ref[1][ok])  # the log itself rounds at 1e-16|log|
        assert np.all(err < tolerance), (depth, xi[ok][np.argmax(err - tolerance)])


def test_direct_recursion_agrees_with_naive_float_recursion_on_benign_points():
    """iterate_depth itself against the literal float64 recursion where it is well conditioned."""
    act = activation("erf")
    xi = np.linspace(-0.95, 0.95, 39)
    S, K, D, m = xi.copy(), xi.copy(), 1.0, act.slope_at_one
    for _ in range(40):
        K = act.dual(S) + K * act.dual_derivative(S)
        S = act.dual(S)
        D = 1 + m * D
    for kind, ref in (("nngp", S), ("ntk", K / D)):
        r = iterate_depth(act.dual_function, xi, 1 - xi, 1 + xi, 40, kind)
        np.testing.assert_allclose(r.sign * np.exp(r.logabs), ref, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", ["erf", "cubic", "sine"])
def test_infinite_depth_is_the_koenigs_function(name):
    act, dual, derivative = make(name)
    for kind in ("nngp", "ntk"):
        k = kernel_function(act, kind, math.inf)
        for point in ("-0.7", "0.1", "0.5", "0.9", "0.99", "0.999999", "0.999999999999"):
            x = mp.mpf(point)
            ref = koenigs(x, dual, derivative)
            sign, logabs = k.log(float(x), float(1 - x), float(1 + x))
            assert float(sign) == float(mp.sign(ref))
            assert float(logabs) == pytest.approx(mp_log_abs(ref), abs=1e-9)
    assert float(nngp(1.0, act, math.inf)) == math.inf


@pytest.mark.parametrize("depth", [10**6, 10**7])
def test_huge_depth_log_domain_follows_koenigs_asymptotics(depth):
    """log S_L = L log c0 + log h(xi) (Koenigs), and K_L / (L c0^L) -> h for the NTK."""
    act, dual, derivative = make("erf")
    c0 = float(derivative(mp.mpf(0)))
    m = act.slope_at_one
    log_D = (depth + 1) * math.log(m) - math.log(m - 1)  # D_L = (m^(L+1) - 1) / (m - 1)
    for point in ("0.2", "0.8", "-0.6"):
        log_h = mp_log_abs(koenigs(mp.mpf(point), dual, derivative))
        s, a = nngp(float(point), act, depth, log=True)
        assert np.isfinite(a)
        assert float(a) == pytest.approx(depth * math.log(c0) + log_h, abs=1e-8, rel=1e-12)
        s, a = ntk(float(point), act, depth, log=True)
        predicted = depth * math.log(c0) + math.log(depth) + log_h - log_D
        assert float(a) == pytest.approx(predicted, abs=50 / depth)


def test_fourth_regime_complement_decays_like_m_to_the_L():
    """dual'(1) < 1 (softplus): 1 - S_L ~ m^L psi(xi); psi from the limit table."""
    act = activation("softplus")
    m = act.slope_at_one
    psi = kernel_function(act, "nngp", math.inf)
    xi = np.array([-0.9, 0.0, 0.5, 0.99])
    log_psi = psi.log_complement(xi)
    for depth in (200, 5000):
        got = kernel_function(act, "nngp", depth).log_complement(xi)
        np.testing.assert_allclose(got, depth * math.log(m) + log_psi, rtol=1e-12)
    with pytest.raises(ValueError, match="log_complement"):
        psi(xi)


def test_normalization_and_diagonal():
    for name in ("relu", "erf", "gelu"):
        for depth in (0, 1, 5, 50):
            assert float(nngp(1.0, name, depth)) == 1.0
            assert float(ntk(1.0, name, depth)) == 1.0
    xi = np.linspace(-1, 1, 11)
    np.testing.assert_allclose(nngp(xi, "relu", 0), xi)
    np.testing.assert_allclose(ntk(xi, "relu", 0), xi)


def unit_rows(rng, n, d):
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def test_gram_matrix_uses_exact_complements_for_near_pairs():
    rng = np.random.default_rng(0)
    X = unit_rows(rng, 5, 4)
    Z = X + 1e-9 * rng.normal(size=X.shape)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    act, dual, derivative = make("erf")
    depth = 60
    G = Kernel(act, "nngp", depth)(X, Z)
    for i in range(5):
        x = [mp.mpf(float(v)) for v in X[i]]
        z = [mp.mpf(float(v)) for v in Z[i]]
        xi = sum(a * b for a, b in zip(x, z, strict=True))
        ref, _ = kernels(xi, dual, derivative, depth)
        assert G[i, i] == pytest.approx(float(ref), rel=1e-9)
    # far pairs equal the kernel function of the plain inner products (the compiled Gram
    # pass reads a value-domain table built to 1e-10 of the log-domain one)
    np.testing.assert_allclose(G[~np.eye(5, dtype=bool)],
                               nngp(np.clip(X @ Z.T, -1, 1), act, depth)[~np.eye(5, dtype=bool)],
                               rtol=1e-10)


def test_gram_is_symmetric_psd_and_blocked():
    from sklearn import config_context

    rng = np.random.default_rng(2)
    X = unit_rows(rng, 300, 6)
    K = Kernel("relu", "ntk", 20)
    G = K(X)
    with config_context(working_memory=0.05):  # forces many row blocks
        blocked = K(X, X)
    # BLAS may sum the d = 6 products of an inner product in another order for another
    # block shape (it does on AVX-512 kernels), so xi can move by a few ulps times d; the
    # entries may then differ by the kernel's own change over that, |k'(xi)| d eps, plus
    # the rounding of the entry itself. Nothing in the code fixes BLAS's order.
    xi = np.clip(X @ X.T, -1 + 1e-6, 1 - 1e-6)
    fn = kernel_function("relu", "ntk", 20)
    slope = np.abs(fn(xi + 1e-7) - fn(xi - 1e-7)) / 2e-7
    eps = np.finfo(float).eps
    bound = 8 * X.shape[1] * eps * slope + 4 * eps * np.abs(G)
    assert np.all(np.abs(blocked - G) <= bound)
    np.testing.assert_allclose(G, G.T, rtol=1e-13, atol=1e-15)
    assert np.linalg.eigvalsh(G).min() > -1e-10


def test_usable_in_scikit_learn():
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.svm import SVC

    rng = np.random.default_rng(3)
    X = unit_rows(rng, 80, 5)
    y = (X[:, 0] > 0).astype(int)
    K = Kernel("erf", "ntk", 10)
    svc = SVC(kernel=K).fit(X[:60], y[:60])
    ref = SVC(kernel="precomputed").fit(K(X[:60]), y[:60])
    np.testing.assert_array_equal(svc.predict(X[60:]), ref.predict(K(X[60:], X[:60])))
    kr = KernelRidge(alpha=1e-3, kernel=K).fit(X[:60], y[:60])
    G = K(X[:60])
    coef = np.linalg.solve(G + 1e-3 * np.eye(60), y[:60])
    np.testing.assert_allclose(kr.predict(X[60:]), K(X[60:], X[:60]) @ coef, rtol=1e-8)


def test_bad_inputs():
    with pytest.raises(ValueError, match="finite"):
        nngp(np.array([0.1, np.nan]), "relu", 3)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        ntk(1.1, "relu", 3)
    for depth in (-1, 2.5, "deep", True, math.nan):
        with pytest.raises(ValueError, match="depth"):
            nngp(0.1, "relu", depth)
    with pytest.raises(ValueError, match="majority vote"):
        nngp(0.1, "relu", math.inf)
    with pytest.raises(ValueError, match="majority vote"):
        ntk(0.1, "gelu", math.inf)
    with pytest.raises(ValueError, match="nearest-neighbour"):
        nngp(0.1, activation("hermite", degree=2), math.inf)
    with pytest.raises(ValueError, match="kind"):
        kernel_function("relu", "rbf", 2)
    with pytest.raises(ValueError, match="unit vectors"):
        Kernel("relu")(np.ones((2, 3)))
    with pytest.raises(ValueError, match="2-D"):
        Kernel("relu")(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        Kernel("relu")(np.full((2, 3), np.nan))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="features"):
        Kernel("relu")(unit_rows(rng, 2, 3), unit_rows(rng, 2, 4))


def test_public_api_exports():
    for name in ("nngp", "ntk", "Kernel", "kernel_function", "activation", "Activation"):
        assert hasattr(infdepth, name)


@pytest.mark.parametrize("name, params, kind, depth", [
    ("relu", {}, "ntk", 3), ("erf", {}, "nngp", math.inf), ("erf", {}, "ntk", 40),
    ("hermite", {"degree": 2}, "nngp", 4), ("abs", {}, "ntk", 2),
    ("sine_family", {"a": 6.13539}, "ntk", math.inf),
])
def test_compiled_gram_path_equals_numpy_path(monkeypatch, name, params, kind, depth):
    """The numba passes (the 'fast' extra) agree with the numpy path: most entries come
    from the value-domain GapTable (built to 1e-10 relative), the rest from the same log
    table with the same cubic."""
    from infdepth.kernels import compiled as kernels

    assert kernels.compiled_fused_values() is not None, "numba is part of the test extra"
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 5))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Z = np.vstack([X[:40], -X[40:80], rng.standard_normal((100, 5))])
    Z[80:] /= np.linalg.norm(Z[80:], axis=1, keepdims=True)
    # Z holds rows of X and of -X: +-inf entries at depth infinity, compared as such
    kernel = Kernel(activation(name, **params), kind, depth, coincident="inf")
    fast = kernel(X, Z)
    monkeypatch.setattr(kernels, "USE_NUMBA", False)
    slow = kernel(X, Z)
    finite = np.isfinite(slow)
    np.testing.assert_array_equal(np.isfinite(fast), finite)
    np.testing.assert_array_equal(fast[~finite], slow[~finite])
    np.testing.assert_allclose(fast[finite], slow[finite], rtol=2e-10, atol=0)


@pytest.mark.parametrize("name, params, kind, depth", [
    ("relu", {}, "ntk", 1000), ("erf", {}, "ntk", 1000), ("erf", {}, "nngp", 3000),
    ("erf", {}, "nngp", 10_000),
    ("tanh", {}, "nngp", math.inf), ("sin", {"frequency": 3.0}, "nngp", 2),
    ("gelu", {}, "ntk", 30), ("sine_family", {"a": 13.8258}, "ntk", math.inf),
])
def test_compiled_gram_matches_direct_recursion(name, params, kind, depth):
    """The compiled Gram pass (value-domain GapTable, log-table fallback in unusable cells:
    sign changes, under/overflow) is accurate to 1e-9 against the direct recursion."""
    from infdepth.kernels import compiled as kernels

    assert kernels.compiled_gap_values() is not None, "numba is part of the test extra"
    rng = np.random.default_rng(4)
    xi, _, _ = dense_points(rng, 3000)
    xi = np.concatenate([xi, rng.uniform(-1, 1, 3000), np.linspace(-0.5, 0.5, 1001)])
    xi = xi[np.abs(xi) < Kernel.NEAR]
    # one unit row e1 against rows (xi, sqrt(1 - xi^2)): the inner products are xi exactly
    X = np.array([[1.0, 0.0]])
    Z = np.column_stack([xi, np.sqrt(1 - xi**2)])
    act = activation(name, **params)
    k = kernel_function(act, kind, depth)
    got = Kernel(act, kind, depth)(X, Z)[0]
    sign, logabs, _ = k._direct(xi, 1 - xi, 1 + xi)
    ref = sign * np.exp(logabs)
    order = np.argsort(xi)
    zeros = xi[order][np.flatnonzero(np.diff(sign[order]) != 0)]
    away = np.all(np.abs(xi[:, None] - zeros[None, :]) > 1e-6, axis=1)
    normal = away & (np.abs(ref) > 1e-290) & (np.abs(ref) < 1e290)
    assert normal.sum() > 100 or np.all(np.abs(ref) <= 1e-290)  # depth 10^4: all underflow
    np.testing.assert_allclose(got[normal], ref[normal], rtol=1e-9, atol=0)
    tiny = np.abs(ref) <= 1e-290  # underflow: the same, up to the subnormal range
    np.testing.assert_allclose(got[tiny], ref[tiny], rtol=0, atol=1e-290)


# ------------------------------------------------------- depth-infinity Gram semantics
def _erf_problem():
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = X - X.mean(axis=0)
    return X / np.linalg.norm(X, axis=1, keepdims=True), y


def test_depth_infinity_gram_never_hands_out_inf_silently():
    """SVC with the depth-infinity kernel: a clear error, not scikit-learn's 'dual
    coefficients are not finite'; the error names the pairs and the classifier to use."""
    from sklearn.svm import SVC

    X, y = _erf_problem()
    with pytest.raises(ValueError, match=r"infinite at 152 coincident.*\(0, 0\), \(1, 1\)"
                       r".*InfiniteNetworkClassifier\(activation, depth=math.inf\)"):
        SVC(kernel=Kernel("erf", depth=math.inf)).fit(X, y)
    K = Kernel("erf", depth=math.inf)
    with pytest.raises(ValueError, match="coincident"):
        K(X[:5], X[:5].copy())  # equal rows of two different arrays
    with pytest.raises(ValueError, match="coincident"):
        K(X[:5], log=True)
    # no coincidence, no error: the entries are finite h values
    G = K(X[:5], X[5:10])
    assert np.all(np.isfinite(G))
    # the explicit options
    Ginf = Kernel("erf", depth=math.inf, coincident="inf")(X[:5])
    assert np.all(np.isposinf(np.diag(Ginf))) and np.isfinite(Ginf[0, 1])
    Gnan = Kernel("erf", depth=math.inf, coincident="nan")(X[:5])
    assert np.all(np.isnan(np.diag(Gnan)))
    np.testing.assert_allclose(Gnan[0, 1:], Ginf[0, 1:], rtol=1e-14)
    assert "coincident='nan'" in repr(Kernel("erf", depth=math.inf, coincident="nan"))
    with pytest.raises(ValueError, match="coincident must be one of"):
        Kernel("erf", depth=math.inf, coincident="zero")(X[:2])
    # odd dual: antipodal pairs are -inf, reported the same way
    with pytest.raises(ValueError, match="antipodal"):
        K(X[:3], -X[:3])
    # finite depth is unaffected, and the depth-infinity classifier handles coincidences
    assert np.allclose(np.diag(Kernel("erf", depth=3)(X[:5])), 1.0)
    clf = infdepth.InfiniteNetworkClassifier("erf", depth=math.inf, projection=None).fit(X, y)
    assert clf.score(X, y) == 1.0


@pytest.mark.parametrize("depth", ["3", "inf", b"3", "math.inf"])
def test_string_depths_are_rejected(depth):
    X, y = _erf_problem()
    with pytest.raises(ValueError, match="not the string"):
        Kernel("erf", depth=depth)(X[:3])
    with pytest.raises(ValueError, match="not the string"):
        ntk(np.array([0.5]), "erf", depth)
    with pytest.raises(ValueError, match="not the string"):
        infdepth.InfiniteNetworkClassifier("erf", depth=depth).fit(X, y)


def test_no_floating_point_warnings_leak():
    """Library code keeps numpy's floating-point warnings to itself: the NTK of xi^2 at
    large depth (log sums past float64 in the recursion) and a callable with NaNs."""
    import warnings

    xi, delta, eps = dense_points(np.random.default_rng(1))
    square = Activation.from_dual_coefficients([0, 0, 1])  # fresh: no cached tables
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for depth in (300, 10_000):
            k = kernel_function(square, "ntk", depth)
            k.log(xi, delta, eps)
            k._direct(xi, delta, eps)
        with pytest.raises(ValueError, match="not finite"):
            Activation.from_callable(np.log)


def test_constant_activation_gets_the_taxonomy_message():
    constant = Activation.from_callable(lambda x: np.ones_like(x), name="one")
    X = np.eye(3)
    message = "one: the dual is constant"
    with pytest.raises(ValueError, match=message):
        infdepth.limit(constant)
    for call in (lambda: nngp(np.array([0.5]), constant, 3),
                 lambda: Kernel(constant, depth=2)(X),
                 lambda: infdepth.InfiniteNetworkClassifier(constant, depth=math.inf).fit(
                     X, [0, 1, 0]),
                 lambda: infdepth.InfiniteNetworkClassifier(constant, depth=3).fit(
                     X, [0, 1, 0])):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_function_is_not_an_activation():
    fn = np.tanh
    for call in (lambda: nngp(np.array([0.5]), fn, 3), lambda: Kernel(fn)(np.eye(2)),
                 lambda: infdepth.limit(fn),
                 lambda: infdepth.InfiniteNetworkClassifier(fn).fit(np.eye(3), [0, 1, 0])):
        with pytest.raises((TypeError, ValueError), match=r"Activation\.from_callable\(fn\)"):
            call()


@pytest.mark.parametrize(("act", "kind"), [("relu", "ntk"), ("relu", "nngp"),
                                           ("sigmoid", "nngp")])
def test_order_zero_gap_tables_cover_xi_near_zero(act, kind):
    """Kernels with k(0) != 0 (table order 0) had their cells next to xi = 0 unusable (the
    reduced value 0 * log 0 was NaN there), so about 1% of random pairs in 40 dimensions
    took the slow path. The compiled pass must cover them, with the general path's values."""
    pytest.importorskip("numba")
    fn = Kernel(act, kind, 3).function
    assert fn.zero_order == 0
    xi = np.linspace(-0.004, 0.004, 801)
    out = np.empty_like(xi)
    rest = fn._gap_pass(xi, out)
    assert rest.size == 0
    np.testing.assert_allclose(out, fn(xi), rtol=1e-10)


DESIGNED_LIKE = [0.0, 0.2, 0.8]  # dual 0.2 xi + 0.8 xi^2: k changes sign for xi < 0


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("depth", [1, 3, 10])
def test_sign_changing_kernels_from_signed_panels(kind, depth, monkeypatch):
    """Where k changes sign (a designed activation's dual for xi < 0) log|k| has no
    smooth table; the signed-value panels give k to about their fit tolerance (1e-14 of
    the panel's largest |k| <= 1) against the literal mpmath recursion, without the
    per-entry recursion."""
    from infdepth.kernels.tables import SignedPanels

    act = Activation.from_dual_coefficients(DESIGNED_LIKE)
    dual, derivative = polynomial_dual(DESIGNED_LIKE)
    fn = kernel_function(act, kind, depth)
    assert fn._signed.ok.any()
    xi = np.concatenate([np.linspace(-0.95, 0.05, 401), [-0.25, -0.2, -1e-3]])
    want = np.array([float(kernels(mp.mpf(float(x)), dual, derivative, depth)[kind == "ntk"])
                     for x in xi])
    monkeypatch.setattr(type(fn), "_direct", lambda *a: pytest.fail("per-entry recursion"))
    sign, logabs = fn.log(xi)
    got = sign * np.exp(logabs)
    # the fit's tolerance, plus the float64 rounding of the node values (depth layers)
    atol = 4 * SignedPanels.TAIL + 4 * depth * np.finfo(float).eps
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)
    np.testing.assert_allclose(fn(xi), want, rtol=0, atol=atol)
    assert np.any(np.sign(want) < 0) and np.any(np.sign(want) > 0)


@pytest.mark.parametrize("kind, depth", [("nngp", 1), ("ntk", 5), ("ntk", 20)])
def test_panels_next_to_a_zero_get_finer_tables_of_their_own(kind, depth, monkeypatch):
    """The designed activation for alpha = 10.75 (dual 0.0258 xi + 0.974 xi^2) has a zero
    of k just left of xi = 0, where log|k| is singular: the panel holding the zero is a
    signed panel (k is smooth there), and the panels next to it need up to 8,192 cells
    where the others need at most 1,024. They get them in tables of their own (the whole
    table had them before: 30 MB), or, where the Chebyshev fit of log|k| misses its
    tolerance (decided in the last bits of numpy's log, which differ between CPUs: on an
    AVX-512 Xeon, nngp depth 1's panel 92 does), they become signed panels too. Either
    way their values match the mpmath recursion without the per-entry recursion: to the
    log tables' 1e-12 relative, and to the signed panels' fit tolerance (1e-14 of the
    panel's largest |k|) plus the recursion's rounding, through both the numpy and the
    compiled paths."""
    from infdepth.design import design_activation
    from infdepth.kernels.tables import SignedPanels

    act = design_activation(alpha=10.75)
    dual, derivative = polynomial_dual(list(act.params["dual_coefficients"]))
    fn = kernel_function(act, kind, depth)
    table = fn._value_table
    assert round(1 / table.step) <= 1024
    assert all(round(1 / t.step) > round(1 / table.step) for t in table.apart.values())
    arrays = [table, *table.apart.values()]
    assert sum(t.c0.nbytes * 5 for t in arrays) < 8e6
    signed = np.flatnonzero(fn._value_fit.sign == 0)
    assert signed.size and fn._signed.ok[signed].all()
    near = sorted(set(table.apart) | set(signed.tolist()))
    assert len(near) >= 2  # the zero's panel and at least one neighbour
    # points in those panels: s = log((1 - xi) / (1 + xi)) in [p - 93, p - 92)
    s = (np.array(near)[:, None] - 93 + np.linspace(0.005, 0.995, 41)[None, :]).ravel()
    xi = -np.tanh(s / 2)
    want = np.array([float(kernels(mp.mpf(float(x)), dual, derivative, depth)[kind == "ntk"])
                     for x in xi])
    in_signed = np.isin(np.repeat(near, 41), signed)
    # signed panels: 1e-14 of the panel's largest |k| (<= 1 + the depth's NTK growth)
    scale = np.max(np.abs(want))
    atol = np.where(in_signed, (4 * SignedPanels.TAIL + 4 * depth * np.finfo(float).eps)
                    * max(scale, 1.0), 0.0)
    monkeypatch.setattr(type(fn), "_direct", lambda *a: pytest.fail("per-entry recursion"))
    sign, logabs = fn.log(xi)
    for got in (sign * np.exp(logabs), fn(xi)):
        err = np.abs(got - want)
        assert np.all(err <= 2e-12 * np.abs(want) + atol), float(np.max(err - atol))
