"""ResNet kernels (issue 16): duals at a variance, finite depth, depth infinity, taxonomy.

Every value is checked against an independent computation (tests/resnet_reference.py,
scipy quadrature, the MLP engine, a finite-width numpy network); tolerances are stated
with the reference's own accuracy.
"""

from __future__ import annotations

import math
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special
from sklearn.utils.estimator_checks import parametrize_with_checks

import infdepth
from infdepth.estimators import IllConditionedGramWarning, InfiniteNetworkClassifier
from infdepth.resnet import (
    MAX_FINITE_DEPTH,
    resnet_diagonal,
    resnet_limit,
    resnet_state,
)

sys.path.insert(0, str(Path(__file__).parent))
import resnet_reference as R  # noqa: E402

ACTS = {
    "relu": infdepth.activation("relu"),
    "erf": infdepth.activation("erf"),
    "tanh": infdepth.activation("tanh"),
    "trig": infdepth.Activation.from_callable(R.trig, name="trig"),
}


# ----------------------------------------------------------------------- dual at variance
def _gh2(f, sx, sz, rho, n=240):
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    v = rho * x[:, None] + math.sqrt(1 - rho * rho) * x[None, :]
    return float(np.sum(w[:, None] * w[None, :] * f(sx * x[:, None]) * f(sz * v)))


CASES = [(1.3, 0.7, 0.4), (1.6, 1.6, -0.8), (0.5, 2.0, 0.95), (1.0, 1.0, 0.3)]


@pytest.mark.parametrize("name", ["tanh", "erf", "sin", "gelu", "trig", "sine_family"])
@pytest.mark.parametrize("sx,sz,rho", CASES)
def test_dual_at_variance_smooth_vs_gauss_hermite(name, sx, sz, rho):
    act = ACTS.get(name) or (infdepth.activation("sine_family", a=2.0) if name == "sine_family"
                             else infdepth.activation(name))
    ref = _gh2(act, sx, sz, rho)  # 240 x 240 tensor rule, analytic integrands: ~1e-12
    assert float(act.dual_at_variance(rho, sx, sz)) == pytest.approx(ref, abs=5e-11)
    # derivative in q_xz against a central difference of the reference (h = 1e-5: ~1e-9)
    h = 1e-5
    fd = (_gh2(act, sx, sz, rho + h / (sx * sz)) - _gh2(act, sx, sz, rho - h / (sx * sz))) / (2 * h)
    assert float(act.dual_at_variance_derivative(rho, sx, sz)) == pytest.approx(fd, abs=1e-8)


@pytest.mark.parametrize("sx,sz,rho", CASES)
def test_dual_at_variance_relu_vs_quadrature(sx, sz, rho):
    relu = ACTS["relu"]
    s = math.sqrt(1 - rho * rho)

    def inner(u):  # E_w[phi(sz (rho u + s w))] for phi = sqrt(2) max(0, .): a Gaussian integral
        a, sd = sz * rho * u, sz * s
        return math.sqrt(2) * (a * special.ndtr(a / sd) + sd * math.exp(-a * a / (2 * sd * sd))
                               / math.sqrt(2 * math.pi))

    ref = integrate.quad(lambda u: math.sqrt(2) * sx * u * inner(u) * math.exp(-u * u / 2)
                         / math.sqrt(2 * math.pi), 0, 40, epsabs=1e-14, epsrel=1e-13)[0]
    assert float(relu.dual_at_variance(rho, sx, sz)) == pytest.approx(ref, rel=1e-11)
    # E[phi'(u) phi'(v)] = 2 P(u > 0, v > 0) = 1/2 + arcsin(rho) / pi (Sheppard)
    assert float(relu.dual_at_variance_derivative(rho, sx, sz)) == pytest.approx(
        0.5 + math.asin(rho) / math.pi, rel=1e-13)


def test_variance_dual_factorization():
    """V(q; rho) = A(q) D_q(rho) with D_q normalized, and 1 - D_q(1 - d) exact for tiny d."""
    for name in ("tanh", "erf", "trig", "relu"):
        act = ACTS[name]
        for q in (0.5, 1.0, 2.3):
            vd = act.variance_dual(q)
            s = math.sqrt(q)
            assert vd.scale == pytest.approx(float(act.dual_at_variance(1.0, s)), rel=1e-12)
            for rho in (-0.6, 0.2, 0.9):
                assert vd.scale * float(vd.dual.value(np.array(rho))) == pytest.approx(
                    float(act.dual_at_variance(rho, s)), rel=1e-11, abs=1e-14)
            d = 1e-30  # comp(d) ~ D_q'(1) d, to full relative precision
            assert float(vd.dual.complement(np.array(d))) == pytest.approx(
                vd.dual.slope_at_one * d, rel=1e-12)


def test_dual_at_variance_bad_inputs():
    relu = ACTS["relu"]
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="sigma"):
            relu.dual_at_variance(0.3, bad)
    with pytest.raises(ValueError, match="variance"):
        ACTS["tanh"].variance_dual(-1.0)


# ----------------------------------------------------------------------- finite depth
XIS = [-0.7, 0.1, 0.6, 1 - 1e-9]


@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("depth", [1, 4, 20])
def test_finite_depth_vs_mpmath_recursion(name, kind, depth):
    """Table values and the layer recursion vs the literal 50-digit recursion (1e-9 rel).

    The tanh reference evaluates V by a float64 Gauss-Hermite rule (absolute ~1e-14), so
    its 1 - k at 1 - xi = 1e-9 is only good to ~1e-5 relative there and is skipped.
    """
    act = ACTS[name]
    table = infdepth.kernel_function(act, kind, depth, architecture="resnet")
    xi = np.array(XIS)
    value = table(xi)
    comp = np.exp(table.log_complement(xi))
    for i, x in enumerate(XIS):
        S, cS, K, cK = R.layers(name, x, depth)
        ref, ref_comp = (S, cS) if kind == "nngp" else (K, cK)
        assert value[i] == pytest.approx(float(ref), rel=1e-9)
        if not (name == "tanh" and x > 0.9):
            assert comp[i] == pytest.approx(float(ref_comp), rel=1e-9)


def test_finite_depth_other_branch_exponents():
    for gamma in (0.0, 0.25, 1.0):
        for kind in ("nngp", "ntk"):
            k = infdepth.kernel_function("relu", kind, 7, architecture="resnet",
                                         branch_exponent=gamma)
            for x in (-0.4, 0.3, 0.8):
                S, _, K, _ = R.layers("relu", x, 7, branch_exponent=gamma)
                assert float(k(np.array([x]))[0]) == pytest.approx(
                    float(S if kind == "nngp" else K), rel=1e-9)


def test_table_matches_depth_map_everywhere():
    """The tabulated kernel against the depth map itself on 2000 points, incl. 1 - |xi| tiny."""
    rng = np.random.default_rng(0)
    gaps = 10.0 ** rng.uniform(-30, 0, 1000)
    xi = np.concatenate([rng.uniform(-1, 1, 1000), 1 - gaps, gaps - 1])
    delta = np.concatenate([1 - xi[:1000], gaps, 2 - gaps])
    for name, kind, depth in [("relu", "ntk", 10), ("erf", "nngp", math.inf),
                              ("relu", "nngp", math.inf), ("tanh", "ntk", 3)]:
        act = ACTS[name]
        table = infdepth.kernel_function(act, kind, depth, architecture="resnet")
        st = resnet_state(act, kind, depth, xi, delta)
        k, comp = st.kernel(kind)
        got = table(xi, delta, 2 - delta)
        # near a sign change of k the relative error is not meaningful: 1e-12 absolute there
        assert np.all(np.abs(got - k) <= 1e-10 * np.abs(k) + 1e-12), (name, kind, depth)
        lc = table.log_complement(xi, delta, 2 - delta)
        assert np.allclose(lc, np.log(comp), rtol=0, atol=1e-10)


def test_relu_diagonal_closed_forms():
    """Normalized ReLU: q_L(x, x) = (1 + 1/L)^L -> e, NTK Theta_L + q_L -> 3e (t = 1)."""
    for L in (1, 5, 100):
        b = 1 / L
        assert resnet_diagonal("relu", "nngp", L) == pytest.approx((1 + b) ** L, rel=1e-13)
        theta = (1 + b) ** L + L * b * (1 + b) ** (L - 1)
        assert resnet_diagonal("relu", "ntk", L) == pytest.approx(theta + (1 + b) ** L, rel=1e-13)
    assert resnet_diagonal("relu", "nngp", math.inf) == pytest.approx(math.e, rel=1e-12)
    assert resnet_diagonal("relu", "ntk", math.inf) == pytest.approx(3 * math.e, rel=1e-12)


def test_relu_diagonal_is_e_to_the_t_by_a_finite_network():
    """A random finite-width ReLU ResNet: ||h_L||^2 / n = (1 + 1/L)^L ~ e^t at t = 1,
    not e^(t/2) (the latter holds for the unnormalized max(0, x), E[relu(u)^2] = 1/2)."""
    rng = np.random.default_rng(1)
    n, L, d = 1000, 40, 8
    x = rng.standard_normal(d)
    x /= np.linalg.norm(x)
    values = []
    for _ in range(4):
        h = rng.standard_normal((n, d)) @ x
        for _ in range(L):
            h = h + rng.standard_normal((n, n)) @ (math.sqrt(2) * np.maximum(h, 0)) / math.sqrt(
                n * L)
        values.append(h @ h / n)
    mean, sem = np.mean(values), np.std(values, ddof=1) / 2
    assert abs(mean - (1 + 1 / L) ** L) < 5 * sem + 0.05
    assert abs(mean - math.exp(0.5)) > 0.5


def test_fixed_beta_relu_resnet_nngp_is_a_leaky_relu_mlp():
    """At fixed beta (gamma = 0, b = 1) rho' = (rho + kappa(rho)) / 2: the normalized dual
    of a leaky ReLU with ((1 + s) / (1 - s))^2 = (2 + b) / b, i.e. s = 2 - sqrt(3)."""
    slope = 2 - math.sqrt(3)
    xi = np.linspace(-0.9, 0.95, 9)
    for L in (3, 30):
        res = infdepth.nngp(xi, "relu", L, architecture="resnet", branch_exponent=0.0)
        mlp = infdepth.nngp(xi, infdepth.activation("leaky_relu", slope=slope), L)
        assert np.allclose(res, mlp, rtol=1e-11, atol=1e-13)


# ----------------------------------------------------------------------- depth infinity
@pytest.mark.parametrize("name", list(ACTS))
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_depth_infinity_vs_independent_ode(name, kind):
    act = ACTS[name]
    xi = np.array([-0.7, 0.1, 0.6, 0.95])
    got = infdepth.kernel_function(act, kind, math.inf, architecture="resnet")(xi)
    ref = np.array([R.ode(name, x)[0 if kind == "nngp" else 1] for x in xi])
    assert np.allclose(got, ref, rtol=1e-8, atol=0)


@pytest.mark.parametrize("name", ["relu", "erf"])
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_depth_infinity_vs_richardson(name, kind):
    """Finite depths are Euler steps of the ODE: k_L = k_inf + c1/L + c2/L^2 + ...;
    four-level Richardson from L = 250..2000 removes the first three terms."""
    act = ACTS[name]
    xi = np.array([-0.7, 0.1, 0.6, 0.95])
    got = infdepth.kernel_function(act, kind, math.inf, architecture="resnet")(xi)
    levels = [resnet_state(act, kind, L, xi).kernel(kind)[0] for L in (250, 500, 1000, 2000)]
    for p in (1, 2, 3):
        levels = [(2**p * b - a) / (2**p - 1) for a, b in zip(levels, levels[1:], strict=False)]
    assert np.allclose(got, levels[0], rtol=1e-8, atol=0)
    # and the O(1/L) rate itself
    e1 = np.abs(resnet_state(act, kind, 500, xi).kernel(kind)[0] - got)
    e2 = np.abs(resnet_state(act, kind, 1000, xi).kernel(kind)[0] - got)
    assert np.all(np.abs(e1 / e2 - 2) < 0.02)


def test_gamma_above_half_is_the_input_kernel():
    xi = np.linspace(-0.99, 0.99, 7)
    for kind in ("nngp", "ntk"):
        k = infdepth.kernel_function("tanh", kind, math.inf, architecture="resnet",
                                     branch_exponent=0.75)
        assert np.allclose(k(xi), xi, rtol=1e-12, atol=1e-15)
    # finite depth: k_L - xi = O(L b) = O(L^(1 - 2 gamma))
    e = [np.max(np.abs(infdepth.nngp(xi, "relu", L, architecture="resnet",
                                     branch_exponent=1.0) - xi)) for L in (10, 100)]
    assert e[0] / e[1] == pytest.approx(10, rel=0.1)


# ----------------------------------------------------------------------- API, errors
def test_kernel_gram_and_errors():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 5))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    for depth in (10, math.inf):
        ker = infdepth.Kernel("relu", "ntk", depth, architecture="resnet")
        G = ker(X)
        direct = infdepth.ntk(np.clip(X @ X.T, -1, 1), "relu", depth, architecture="resnet")
        off = ~np.eye(30, dtype=bool)  # the diagonal uses exact 1 - xi = 0 (K = 1 exactly);
        # the compiled Gram pass is checked against the log table to 1e-10 relative
        assert np.allclose(G[off], direct[off], rtol=1e-9, atol=1e-12)
        assert np.all(np.diag(G) == 1.0)
        assert np.min(np.linalg.eigvalsh(G)) > 0
        assert "resnet" in repr(ker)
        single = infdepth.Kernel("relu", "ntk", depth, architecture="resnet", dtype="float32")(X)
        assert single.dtype == np.float32 and np.allclose(single, G, rtol=1e-5, atol=1e-6)
        sign, logabs = ker(X, log=True)
        assert np.allclose(sign * np.exp(logabs), G, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="architecture"):
        infdepth.nngp(0.3, "relu", 3, architecture="transformer")
    with pytest.raises(ValueError, match="branch_exponent"):
        infdepth.nngp(0.3, "relu", 3, architecture="resnet", branch_exponent=-0.5)
    with pytest.raises(ValueError, match="branch_exponent"):
        infdepth.nngp(0.3, "relu", 3, architecture="resnet", branch_exponent="half")
    with pytest.raises(ValueError, match="majority vote"):
        infdepth.nngp(0.3, "relu", math.inf, architecture="resnet", branch_exponent=0.25)
    with pytest.raises(ValueError, match="only at branch_exponent=0.5"):
        infdepth.nngp(0.3, "relu", MAX_FINITE_DEPTH + 1, architecture="resnet",
                      branch_exponent=0.4)


def test_resnet_limit_taxonomy():
    assert resnet_limit("relu", 0.75).kind == "input_kernel"
    assert resnet_limit("erf", 0.5).kind == "ode_kernel"
    low = resnet_limit("relu", 0.0)
    assert low.kind == "degenerate" and "majority" in low.rule
    assert infdepth.limit("relu", architecture="resnet", branch_exponent=0.5).kind == "ode_kernel"
    with pytest.raises(ValueError, match="branch_exponent"):
        resnet_limit("relu", -1)


def test_fixed_beta_relu_rate():
    """gamma < 1/2 degenerates like the MLP's parabolic ReLU: at fixed beta^2 = b,
    1 - S_L ~ (9 pi^2 / 2) ((1 + b) / b)^2 / L^2 for every xi > -1."""
    xi = np.array([-0.5, 0.0, 0.5])
    L = 4000
    comp = np.exp(infdepth.kernel_function("relu", "nngp", L, architecture="resnet",
                                           branch_exponent=0.0).log_complement(xi))
    predicted = 9 * math.pi**2 / 2 * 4 / L**2
    # the next term of the parabolic expansion is O(log L / L^3): a few percent at L = 4000
    assert np.allclose(comp, predicted, rtol=0.03)


# ----------------------------------------------------------------------- classifiers
@parametrize_with_checks(
    [
        InfiniteNetworkClassifier("relu", depth=5, architecture="resnet"),
        InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf, architecture="resnet"),
    ]
)
def test_resnet_sklearn_conformance(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IllConditionedGramWarning)
        check(estimator)


def test_resnet_classifier_accuracy_and_rules():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import cross_val_score

    X, y = load_breast_cancer(return_X_y=True)
    for depth in (10, math.inf):
        clf = InfiniteNetworkClassifier("relu", depth=depth, architecture="resnet")
        assert cross_val_score(clf, X, y, cv=5).mean() > 0.95
    fitted = InfiniteNetworkClassifier("relu", depth=math.inf, architecture="resnet").fit(X, y)
    assert fitted.rule_ == "interpolation" and fitted.attractor_ == "resnet"
    # the fitted interpolant reproduces the training labels (kernel interpolation)
    assert fitted.score(X, y) == 1.0
    low = InfiniteNetworkClassifier("relu", depth=math.inf, architecture="resnet",
                                    branch_exponent=0.25).fit(X, y)
    assert low.rule_ == "majority_vote"
    assert np.all(low.predict(X[:5] + 1e-3) == np.bincount(y).argmax())
    with pytest.raises(ValueError, match="architecture"):
        InfiniteNetworkClassifier(architecture="cnn").fit(X, y)
    with pytest.raises(ValueError, match="branch_exponent"):
        InfiniteNetworkClassifier(architecture="resnet", branch_exponent=-1).fit(X, y)
    with pytest.raises(ValueError, match="not a kernel"):
        InfiniteNetworkClassifier("tanh", depth=math.inf, architecture="resnet",
                                  branch_exponent=0.0).fit(X, y)
    clone = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(clone.predict(X[:50]), fitted.predict(X[:50]))


def test_resnet_phase_diagram(tmp_path):
    from infdepth.plots import plot_resnet_taxonomy, resnet_phase_data

    data = resnet_phase_data("relu", gammas=[0.0, 0.5, 1.0], depths=(10, 100, 1000))
    v = data["values"]
    assert np.all(np.diff(v[:, 0]) > 0) and v[-1, 0] > 0.99  # gamma = 0: k -> 1 (majority)
    assert np.all(np.diff(np.abs(v[:, 1] - data["limit"])) < 0)  # gamma = 1/2: -> ODE
    assert abs(v[-1, 1] - data["limit"]) < 1e-3
    assert np.all(np.diff(v[:, 2]) < 0) and v[-1, 2] < 2e-3  # gamma = 1: -> xi = 0
    pytest.importorskip("matplotlib")
    out = tmp_path / "resnet_phase.png"
    plot_resnet_taxonomy(out, activations=("relu",), depths=(10, 100))
    assert out.stat().st_size > 10_000


def test_ode_kernel_singularity_at_the_diagonal():
    """The gamma = 1/2 ReLU kernels keep the MLP's behaviour at xi -> 1:
    1 - S ~ c delta (smooth part first, delta^(3/2) next) and 1 - K ~ c delta^(1/2)."""
    d = np.array([1e-20, 1e-22])
    for kind, power in (("nngp", 1.0), ("ntk", 0.5)):
        lc = infdepth.kernel_function("relu", kind, math.inf, architecture="resnet") \
            .log_complement(1 - d, d, 2 - d)
        assert (lc[0] - lc[1]) / math.log(100) == pytest.approx(power, rel=1e-6)


def test_fixed_beta_erf_power_law():
    """Bounded phi, fixed beta: rho_L(xi) ~ C(xi) L^-(1 - 2/pi) (the sign dual's slope at 0)."""
    act = ACTS["erf"]
    x = np.array([0.5, 0.9])
    c = [resnet_state(act, "nngp", L, x, branch_exponent=0.0).rho * L ** (1 - 2 / math.pi)
         for L in (1000, 10_000)]
    assert np.allclose(c[0], c[1], rtol=0.01)
    assert np.allclose(c[1], [0.9078, 2.2136], rtol=1e-3)


def test_docs_resnet_md_examples():
    import doctest

    docs = Path(__file__).parent.parent / "docs" / "resnet.md"
    result = doctest.testfile(str(docs), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("name,kind,tol", [("erf", "nngp", 1e-10), ("relu", "ntk", 3e-8)])
def test_large_depth_extrapolation_vs_recursion(name, kind, tol):
    """Above EXTRAPOLATE_ABOVE (gamma = 1/2) depths come from the ODE and depths 2048, 4096
    (k_L = k_inf + c1/L + c2/L^2); against the literal recursion at L = 20000 on 61 points
    spread over s in [-90, 90]. The ReLU NTK's square-root singularity at rho = 1 leaves
    a measured 1e-8 (relative to max(|k|, 1e-3)); smooth cases 1e-12."""
    from infdepth.kernels.tables import complements_from_s
    from infdepth.resnet import EXTRAPOLATE_ABOVE, _initial, _recursion

    act = ACTS[name]
    L = 2 * EXTRAPOLATE_ABOVE
    s = np.linspace(-90, 90, 61)
    delta, _ = complements_from_s(s)
    xi = -np.tanh(s / 2)
    ref = _recursion(act, kind, _initial(kind, xi, delta), L, 0.5).kernel(kind)
    got = resnet_state(act, kind, L, xi, delta).kernel(kind)
    assert np.all(np.abs(got[0] - ref[0]) <= tol * np.maximum(np.abs(ref[0]), 1e-3))
    assert np.all(np.abs(got[1] - ref[1]) <= tol * ref[1])
