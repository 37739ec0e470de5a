"""The infinite-depth taxonomy (docs/theory.md section 4) against numerics.

The central test builds a small training set on the sphere S^2, computes finite-depth
kernel interpolation predictions f_L(x) = k_L(x)^T K_L^{-1} y from the kernel engine at
increasing depths, and checks that they agree more and more with the limit rule that
``limit()`` names: majority vote, 1-NN, the singular classifier sign(sum_i y_i h) or psi
interpolation. Agreement fractions by depth are printed (run with ``-s``); set
``INFDEPTH_TAXONOMY_FULL=1`` to follow ReLU on the generic data to depth 10^4 as well
(3000 otherwise).

Data: uniform points on S^2 (not Dirichlet data: its clustered points make the Gram
matrices of smooth kernels ill-conditioned, ~1e18, see ``test_psi_matrix_conditioning``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings

import numpy as np
import pytest
import scipy.linalg as sla

import infdepth
from infdepth import Activation, Kernel, activation, kernel_function, nngp
from infdepth.design import design_activation
from infdepth.kernels import inner_products
from infdepth.taxonomy import (
    KINDS,
    InfiniteDepthLimit,
    classify,
    limit,
    limit_predict,
    singular_exponent,
    slope_tail_estimate,
)

FULL = os.environ.get("INFDEPTH_TAXONOMY_FULL") == "1"
DEPTHS = (10, 100, 1000, 3000, 10000) if FULL else (10, 100, 3000)
N_TRAIN, N_TEST = 40, 80


def _sphere(rng, n, d=3):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(20260)
    X = _sphere(rng, N_TRAIN)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] ** 2 - 0.5 > 0, 1, -1)
    flip = rng.random(N_TRAIN) < 0.15
    y[flip] *= -1
    return X, y, _sphere(rng, N_TEST)


@pytest.fixture(scope="module")
def parabolic_data():
    """For m = 1 the rule takes over once L >> (Fatou offset ~ (1 - xi)^(-1/2)) x n / |sum y|
    for every test-training pair: test points are kept at 1 - xi >= 0.02 from the training
    points and the labels have a 70% majority, so that depth 300 suffices. (On the generic
    data, with its closest pairs, ReLU needs depth ~3000; see INFDEPTH_TAXONOMY_FULL.)"""
    rng = np.random.default_rng(7)
    X = _sphere(rng, N_TRAIN)
    y = np.where(rng.random(N_TRAIN) < 0.7, 1, -1)
    Z = _sphere(rng, 5 * N_TEST)
    Z = Z[np.min(1 - Z @ X.T, axis=1) > 0.02][:N_TEST]
    return X, y, Z


_DESIGNED = {}


def _designed(key):
    if key not in _DESIGNED:
        if key == "designed_poly_D2":
            _DESIGNED[key] = design_activation(dimension=2)
        else:
            _DESIGNED[key] = design_activation(dimension=3, family="sine")
    return _DESIGNED[key]


_POLY = {}


def _poly(key, coefficients):
    if key not in _POLY:
        _POLY[key] = Activation.from_dual_coefficients(coefficients, name=key)
    return _POLY[key]


# name -> (activation factory, expected kind, NNGP depths, NTK depths, final agreement
#          (one number, or one for the NNGP and one for the NTK))
CASES = {
    "relu": (lambda: activation("relu"), "majority_vote", [10, 300], [10, 100], 1.0),
    "erf": (lambda: activation("erf"), "singular", [1, 10, 100], [1, 10**6], 1.0),
    # tanh's dual is a degree-223 series, the costliest to iterate: its NTK (which converges
    # like 1/L) is followed only to depth 300 here (1.0 is reached by depth 10^4)
    "tanh": (lambda: activation("tanh"), "singular", [1, 100], [1, 300], (1.0, 0.97)),
    "sine_family(a=2.676)": (lambda: activation("sine_family", a=2.676), "singular",
                             [1, 3, 10], [1, 1000], 1.0),
    "0.3+0.2xi+0.5xi^2": (lambda: _poly("0.3+0.2xi+0.5xi^2", [0.3, 0.2, 0.5]),
                          "majority_vote", [1, 30, 100], [1, 300], 1.0),
    "gelu": (lambda: activation("gelu"), "majority_vote", [10, 300], [10, 300], 1.0),
    "xi^2": (lambda: activation("hermite", degree=2), "nearest_neighbor",
             [1, 3, 10], [1, 10], 1.0),
    "softplus": (lambda: activation("softplus"), "psi_interpolation", [1, 3, 10], [1, 1000],
                 1.0),
    "designed_poly_D2": (lambda: _designed("designed_poly_D2"), "singular", [1, 10],
                         [1, 10**6], 1.0),
    "designed_sine_D3": (lambda: _designed("designed_sine_D3"), "singular", [1, 10],
                         [1, 10**6], 1.0),
}

AGREEMENT: dict[tuple[str, str], list[tuple[int, float]]] = {}


# --------------------------------------------------------------------------- helpers
def _solve(G, y):
    """K^{-1} y; minimum-norm least squares when K is ill-conditioned (stated fallback)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", sla.LinAlgWarning)
        try:
            return sla.solve(G, y, assume_a="sym")
        except (sla.LinAlgError, sla.LinAlgWarning):
            return sla.lstsq(G, y)[0]


def finite_depth_predict(act, kind, depth, X, y, Z, regime):
    """sign(k_L(z)^T K_L^{-1} y) at a finite depth, computed so that no digit is lost.

    Where the kernel tends to 1 (m <= 1) the Gram matrix is J - E with E = 1 - K tiny;
    (J - E) a = y is then solved in the exactly equivalent bordered form
    [E/s 1; 1^T s][b; c] = [y; 0], f = c + (e(z)/s)^T b (s = max E), from the engine's
    log complements. Elsewhere K is solved directly and k(z) is rescaled per row
    (classification is invariant to a positive factor), so values that underflow in
    linear scale keep their information.
    """
    if regime in ("parabolic", "one"):
        k = kernel_function(act, kind, depth)
        log_E = k.log_complement(*inner_products(X, X))
        np.fill_diagonal(log_E, -np.inf)
        log_e = k.log_complement(*inner_products(Z, X))
        top = log_E.max()
        n = y.size
        A = np.ones((n + 1, n + 1))
        A[:n, :n] = np.exp(log_E - top)
        A[n, n] = np.exp(top)
        rhs = np.append(y, 0.0).astype(float)
        sol = (np.linalg.solve(A, rhs) if np.linalg.cond(A) < 1e12
               else np.linalg.lstsq(A, rhs, rcond=None)[0])
        f = sol[n] + np.exp(log_e - top) @ sol[:n]
        return np.where(f >= 0, 1, -1)
    K = Kernel(act, kind, depth)
    a = _solve(K(X), y.astype(float))
    sign, log_k = K(Z, X, log=True)
    top = log_k.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    f = (sign * np.exp(log_k - top)) @ a
    return np.where(f >= 0, 1, -1)


def rule_predict(act, record, X, y, Z):
    """The limit rule written out again, independently of ``limit_predict``."""
    if record.kind == "majority_vote":
        return np.full(Z.shape[0], 1 if y.sum() >= 0 else -1)
    xi = Z @ X.T
    if record.kind == "nearest_neighbor":
        if record.parity == 1:
            return y[np.argmax(np.abs(xi), axis=1)]
        return y[np.argmax(xi, axis=1)]
    if record.kind == "singular":
        sign, log_h = nngp(xi, act, math.inf, log=True)
        top = log_h.max(axis=1, keepdims=True)
        f = np.sum(y * sign * np.exp(log_h - top), axis=1)
        return np.where(f >= 0, 1, -1)
    k = kernel_function(act, "nngp", math.inf)
    psi = np.exp(k.log_complement(X @ X.T))
    np.fill_diagonal(psi, 0.0)
    n = y.size
    A = np.ones((n + 1, n + 1))
    A[:n, :n] = psi
    A[n, n] = 0.0
    sol = np.linalg.lstsq(A, np.append(y, 0.0), rcond=None)[0]
    f = sol[n] + np.exp(k.log_complement(xi)) @ sol[:n]
    return np.where(f >= 0, 1, -1)


# --------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("name", list(CASES))
def test_finite_depth_predictions_converge_to_the_limit_rule(name, data, parabolic_data):
    X, y, Z = parabolic_data if name == "relu" else data
    factory, expected, nngp_depths, ntk_depths, final = CASES[name]
    act = factory()
    record = limit(act, oscillation=False)
    assert record.kind == expected
    rule = limit_predict(act, X, y, Z)
    independent = rule_predict(act, record, X, y, Z)
    assert np.mean(rule == independent) >= 0.99, "limit_predict disagrees with the rule"
    for kind, depths in (("nngp", nngp_depths), ("ntk", ntk_depths)):
        row = []
        for depth in depths:
            pred = finite_depth_predict(act, kind, depth, X, y, Z, record.regime)
            row.append((depth, float(np.mean(pred == rule))))
        AGREEMENT[(name, kind)] = row
        print(f"\n{name:22s} {kind}: " + "  ".join(f"L={d}: {a:.3f}" for d, a in row))
        first, last = row[0][1], row[-1][1]
        assert last >= first
        assert max(a for _, a in row) == pytest.approx(last, abs=0.02)  # no late collapse
        target = final[kind == "ntk"] if isinstance(final, tuple) else final
        assert last >= target, f"{name} {kind}: agreement {last} at depth {row[-1][0]}"


def test_relu_on_generic_data_needs_large_depth(data):
    """Parabolic: the majority vote only once L >> the Fatou offset (1 - xi)^(-1/2).

    Measured agreement (NNGP / NTK): L = 10: 0.575 / 0.600, 100: 0.637 / 0.900,
    1000: 0.988 / 1.000, 3000 and 10^4: 1.000 (``INFDEPTH_TAXONOMY_FULL=1`` adds 10^4).
    """
    X, y, Z = data
    act = activation("relu")
    rule = limit_predict(act, X, y, Z)
    for kind in ("nngp", "ntk"):
        row = [(L, float(np.mean(finite_depth_predict(act, kind, L, X, y, Z, "parabolic")
                                 == rule))) for L in DEPTHS]
        print(f"\nrelu (generic data) {kind}: " + "  ".join(f"L={d}: {a:.3f}" for d, a in row))
        assert row[-1][1] >= 0.98 and row[-1][1] >= row[0][1]


def test_covers_all_kinds():
    kinds = {CASES[name][1] for name in CASES}
    assert kinds == set(KINDS)
    assert len(CASES) >= 8


# --------------------------------------------------------------------------- records
def test_record_is_immutable_and_complete():
    record = limit("erf")
    assert isinstance(record, InfiniteDepthLimit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.kind = "majority_vote"  # type: ignore[misc]
    d = record.as_dict()
    for key in ("kind", "alpha", "fixed_point", "c0", "m", "antipodal", "explanation",
                "oscillation", "dual_at_minus_one"):
        assert key in d
    assert "\n" not in record.explanation
    assert "alpha" in record.format()


def test_erf_closed_form_numbers():
    b = 2 / 3
    scale = math.asin(b)
    c0 = b / scale
    m = b / math.sqrt(1 - b * b) / scale
    record = limit("erf")
    assert record.kind == "singular" and record.regime == "zero"
    assert record.c0 == pytest.approx(c0, rel=1e-14)
    assert record.m == pytest.approx(m, rel=1e-14)
    assert record.alpha == pytest.approx(2 * math.log(1 / c0) / math.log(m), rel=1e-13)
    assert record.measured_alpha == pytest.approx(record.alpha, abs=1e-6)
    assert record.oscillation < 1e-6
    assert record.parity == -1 and record.dual_at_minus_one == -1.0
    assert "repelling" in record.antipodal and "-inf" in record.antipodal


def test_interior_fixed_points():
    poly = limit(_poly("0.3+0.2xi+0.5xi^2", [0.3, 0.2, 0.5]))
    assert poly.kind == "majority_vote" and poly.regime == "interior"
    assert poly.fixed_point == pytest.approx(0.6, abs=1e-14)  # 0.5 x^2 - 0.8 x + 0.3 = 0
    assert poly.multiplier == pytest.approx(0.8, abs=1e-14)
    gelu = limit("gelu")
    assert gelu.kind == "majority_vote"
    assert gelu.fixed_point == pytest.approx(0.7604, abs=1e-4)  # docs/theory.md section 4


def test_fourth_kind():
    softplus = limit("softplus")
    assert softplus.kind == "psi_interpolation" and softplus.regime == "one"
    assert softplus.m == pytest.approx(0.318, abs=1e-3)  # docs/theory.md section 4
    poly = limit(_poly("0.5+0.3xi+0.2xi^2", [0.5, 0.3, 0.2]))
    assert poly.kind == "psi_interpolation"
    assert poly.m == pytest.approx(0.7, abs=1e-15)
    assert "not the majority vote" in poly.explanation


def test_parabolic_family():
    for name, params in (("relu", {}), ("abs", {}), ("leaky_relu", {"slope": 0.2})):
        record = limit(name, **params)
        assert record.kind == "majority_vote" and record.regime == "parabolic"
        assert record.decisions == ()  # closed form: m = 1 exactly, nothing to decide
    assert "identified" in limit("abs").antipodal  # even dual


def test_numerical_relu_is_decided_by_analysis():
    """From a callable, the truncated series gives m = 0.989; the tail estimate restores 1."""
    for fn, name in ((lambda x: np.maximum(x, 0.0), "relu"), (np.abs, "abs")):
        act = Activation.from_callable(fn, name=name)
        assert act.slope_at_one < 0.99  # the raw truncated value
        record = limit(act)
        assert record.kind == "majority_vote" and record.regime == "parabolic"
        assert abs(record.m - 1) < 1e-4
        assert any("counted as 1" in d for d in record.decisions)
    # a kink away from 0 is far from m = 1: E[phi'^2] / E[phi^2] for phi = (x - 0.3)_+
    from scipy.stats import norm

    q, p = norm.sf(0.3), norm.pdf(0.3)
    m_exact = q / ((1 + 0.09) * q - 0.3 * p)
    record = limit(Activation.from_callable(lambda x: np.maximum(x - 0.3, 0.0)))
    assert record.kind == "majority_vote" and record.regime == "interior"
    assert record.m == pytest.approx(m_exact, abs=3 * record.m_uncertainty)
    assert abs(record.m - m_exact) < 2e-3


def test_slope_tail_estimate():
    # exact power law c_k = k^-2.5 on even k; its tail sum_{even k > 512} k^-1.5, summed
    # to N = 4e6 plus the remainder N^-0.5 (Euler-Maclaurin, error ~1e-10)
    k = np.arange(513)
    c = np.where((k % 2 == 0) & (k > 0), np.maximum(k, 1.0) ** -2.5, 0.0)
    tail, unc = slope_tail_estimate(c)
    n = 4_000_000
    exact = float(np.sum(np.arange(514, n, 2, dtype=float) ** -1.5)) + n**-0.5
    assert tail == pytest.approx(exact, rel=0.02)
    assert abs(tail - exact) <= unc
    assert slope_tail_estimate(c[:10]) == (0.0, 0.0)
    diverging = np.where(k % 2 == 1, np.maximum(k, 1.0) ** -1.5, 0.0)[:513]
    assert slope_tail_estimate(diverging)[0] == math.inf


def test_sign_function_has_infinite_slope():
    record = limit(Activation.from_callable(np.sign, name="sign"))
    assert record.m == math.inf
    assert record.kind == "singular" and record.alpha == 0.0
    assert "logarithmic" in record.explanation


def test_nearest_neighbor_and_antipodes():
    even, odd = limit("hermite", degree=2), limit("hermite", degree=3)
    assert even.kind == odd.kind == "nearest_neighbor"
    assert "+y_j" in even.antipodal and "-y_j" in odd.antipodal
    # numerics: a test point next to -x_j, finite depth 12
    rng = np.random.default_rng(3)
    X = _sphere(rng, 12)
    y = np.where(rng.random(12) < 0.5, 1, -1)
    Z = -X + 1e-3 * rng.standard_normal(X.shape)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    for degree, sign in ((2, 1), (3, -1)):
        act = activation("hermite", degree=degree)
        pred = finite_depth_predict(act, "nngp", 12, X, y, Z, "superattracting_zero")
        np.testing.assert_array_equal(pred, sign * y)
        np.testing.assert_array_equal(limit_predict(act, X, y, Z), sign * y)


def test_singular_antipodal_behaviour():
    # odd dual: h(-1 + d) = -h(1 - d) -> -inf
    d = np.array([1e-6, 1e-9])
    s_plus, l_plus = kernel_function("erf", "nngp", math.inf).log(1 - d, delta=d, eps=2 - d)
    s_minus, l_minus = kernel_function("erf", "nngp", math.inf).log(d - 1, delta=2 - d, eps=d)
    np.testing.assert_array_equal(s_minus, -1)
    np.testing.assert_allclose(l_minus, l_plus, rtol=1e-10)
    assert l_plus[1] > l_plus[0] > 5
    # no parity: -1 maps into (-1, 1), h(-1) = h(dual(-1)) / c0 is finite
    act = _designed("designed_poly_D2")
    record = limit(act)
    assert record.parity == 0 and -1 < record.dual_at_minus_one < 1
    assert "finite" in record.antipodal
    h = kernel_function(act, "nngp", math.inf)
    expected = float(h(np.array(record.dual_at_minus_one))) / record.c0
    assert float(h(np.array(-1.0))) == pytest.approx(expected, rel=1e-9)


def test_log_periodic_oscillation_matches_theory():
    """docs/theory.md section 4.1: 1e-7 for xi/2 + xi^3/2, about 75% for
    sinh(13.8 xi) / sinh(13.8)."""
    flat = limit(_poly("xi/2+xi^3/2", [0, 0.5, 0, 0.5]))
    assert flat.alpha == pytest.approx(2.0, abs=1e-14)
    assert 5e-8 < flat.oscillation < 5e-7
    wavy = limit("sine_family", a=13.8258)
    assert 0.7 < wavy.oscillation < 0.8
    assert wavy.measured_alpha == pytest.approx(wavy.alpha, abs=1e-6)


def test_paper_check_values():
    """docs/theory.md section 5: alpha = 2 log(1/c0) / log dual'(1) for the listed duals."""
    exact = {
        1.0: [0, 0.5, 0, 0, 0, 0, 0, 0.5],
        2.0: [0, 0.5, 0, 0.5],
        4.0: [0, 0.25, 0.5, 0.25],
        8.0: [0, 1 / 16, 7 / 8, 1 / 16],
    }
    for target, coefficients in exact.items():
        record = limit(Activation.from_dual_coefficients(coefficients), oscillation=False)
        assert record.kind == "singular"
        assert record.alpha == pytest.approx(target, abs=1e-12)
    # the sine family: a = 2.676, 6.13539, 13.8258 give alpha close to (not exactly) 2, 4, 8
    report = []
    for a, target in ((2.676, 2.0), (6.13539, 4.0), (13.8258, 8.0)):
        record = limit("sine_family", a=a, oscillation=False)
        assert record.c0 == pytest.approx(a / math.sinh(a), rel=1e-14)
        assert record.m == pytest.approx(a / math.tanh(a), rel=1e-14)
        assert abs(record.alpha - target) < 5e-5
        exact_a = design_activation(alpha=target, family="sine").params["a"]
        assert round(exact_a, {2.0: 3, 4.0: 5, 8.0: 4}[target]) == pytest.approx(a, abs=1e-12)
        report.append(f"a={a}: alpha={record.alpha:.10f} (target {target}, "
                      f"discrepancy {record.alpha - target:+.2e}; exact a={exact_a:.10f})")
    print("\n" + "\n".join(report))


def test_classify_decisions_and_tolerances():
    assert classify(0.0, 0.5, 2.0)[0] == "singular"
    assert classify(1e-21, 0.5, 2.0)[0] == "singular"  # numerically zero dual(0)
    assert classify(1e-19, 0.5, 2.0)[0] == "majority_vote"
    assert classify(0.0, 1e-21, 2.0)[0] == "nearest_neighbor"
    assert classify(0.3, 0.5, 1 + 1e-13)[1] == "parabolic"
    assert classify(0.3, 0.5, 1 + 1e-9)[1] == "interior"
    assert classify(0.3, 0.5, 1 - 1e-9)[0] == "psi_interpolation"
    assert classify(0.3, 0.5, 1.001, m_uncertainty=1e-3)[1] == "parabolic"
    kind, regime, decisions = classify(0.3, 0.5, 1 + 5e-13)
    assert regime == "parabolic" and "counted as 1" in decisions[0]
    with pytest.raises(ValueError, match="attracting"):
        classify(0.0, 1.0, 1.0, identity=True)
    with pytest.raises(ValueError, match="constant"):
        classify(1.0, 0.0, 0.0)
    assert singular_exponent(0.5, 2.0) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        singular_exponent(0.0, 2.0)


def test_bad_input():
    with pytest.raises(ValueError, match="no attracting point"):
        limit(Activation.from_dual_coefficients([0, 1]))
    with pytest.raises(ValueError, match="no attracting point"):
        limit("hermite", degree=1)
    with pytest.raises(ValueError, match="constant"):
        limit(Activation.from_dual_coefficients([1.0]))
    with pytest.raises(ValueError, match="unknown activation"):
        limit("not_an_activation")
    with pytest.raises(TypeError):
        limit(3.0)
    with pytest.raises(ValueError, match="activation name"):
        limit(activation("erf"), scale=2.0)
    X = _sphere(np.random.default_rng(0), 5)
    with pytest.raises(ValueError, match=r"\{-1, \+1\}"):
        limit_predict("erf", X, np.array([0, 1, 0, 1, 0]), X)
    with pytest.raises(ValueError, match="labels"):
        limit_predict("erf", X, np.array([1, -1]), X)
    with pytest.raises(ValueError, match="unit vectors"):
        limit_predict("erf", 2 * X, np.ones(5), X)


def test_psi_matrix_conditioning():
    """Why the agreement tests use uniform sphere data: psi is analytic for softplus, and
    its bordered interpolation matrix is far better conditioned on spread-out points."""
    from infdepth.data import paper_tasks

    k = kernel_function("softplus", "nngp", math.inf)

    def condition(X):
        n = X.shape[0]
        A = np.ones((n + 1, n + 1))
        A[:n, :n] = np.exp(k.log_complement(*inner_products(X, X)))
        A[n, n] = 0.0
        return np.linalg.cond(A)

    clustered, _ = paper_tasks()[3].sample(N_TRAIN, random_state=0)
    spread = _sphere(np.random.default_rng(20260), N_TRAIN)
    assert condition(clustered) > 1e6 * condition(spread)
    assert condition(spread) < 1e11


_TWIN_PARAMS = {"sine_family": {"a": 2.676}, "hermite": {"degree": 3}}


@pytest.mark.parametrize("name", sorted(infdepth.BUILTIN_ACTIVATIONS))
def test_taxonomy_and_classifier_agree_for_builtins_and_their_callable_twins(name):
    """One regime decision: for every built-in activation and the same phi given as a
    plain callable (a truncated numerical Hermite series, the case that once disagreed
    for ReLU), limit().kind is the classifier's depth-infinity rule_, and limit().regime
    its attractor_. The twin must land in the built-in's regime (an independent check of
    the tail-aware decision on kinked activations)."""
    builtin = infdepth.activation(name, **_TWIN_PARAMS.get(name, {}))
    twin = infdepth.Activation.from_callable(builtin.function, name=f"{name} (callable)")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((24, 3))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.arange(24) % 2
    regimes = []
    for act in (builtin, twin):
        record = limit(act)
        clf = infdepth.InfiniteNetworkClassifier(act, depth=math.inf, projection=None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ill-conditioned psi systems are reported, fine
            clf.fit(X, y)
        assert clf.rule_ == record.kind, (act, clf.rule_, record.kind)
        assert clf.attractor_ == record.regime, (act, clf.attractor_, record.regime)
        regimes.append(record.regime)
    assert regimes[0] == regimes[1], regimes
