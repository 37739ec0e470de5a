"""Parabolic fixed points (dual'(1) = 1): the Fatou depth jumps against mpmath.

* Depths 300 .. 10^5: the engine's tables against the literal 50-digit recursion
  (tests/reference.py), values and complements, to 1e-9 relative.
* Depths 10^6 .. 10^12: against an independent asymptotic reference
  (tests/reference_parabolic.py: its own Fatou terms, mpmath's findroot and sumem),
  which itself agrees with the literal recursion where both run (10^5).
"""

from __future__ import annotations

import math
import time

import mpmath as mp
import numpy as np
import pytest
from reference import kernels
from reference_parabolic import _fatou as fatou_terms
from reference_parabolic import deep_kernels, polynomial, relu_family

import infdepth
from infdepth import Activation, kernel_function
from infdepth.dynamics import find_attractor
from infdepth.parabolic import fatou_coordinate

POLYNOMIAL = [0.25, 0.5, 0.25]  # dual = (1 + xi)^2 / 4: m = 1, parabolic and analytic


def _leaky_kinked(slope: float) -> float:
    """beta^2 / (alpha^2 + beta^2) for max(x, s x) = (1 + s)/2 x + (1 - s)/2 |x|."""
    return (1 - slope) ** 2 / ((1 + slope) ** 2 + (1 - slope) ** 2)


CASES = {
    "relu": (lambda: infdepth.activation("relu"), lambda: relu_family("0.5")),
    "abs": (lambda: infdepth.activation("abs"), lambda: relu_family(1)),
    "leaky_relu": (lambda: infdepth.activation("leaky_relu", slope=0.2),
                   lambda: relu_family(mp.mpf(_leaky_kinked(0.2)))),
    "polynomial": (lambda: Activation.from_dual_coefficients(POLYNOMIAL),
                   lambda: polynomial(POLYNOMIAL)),
}
POINTS = [-1.0, -0.5, 0.0, 0.5, 0.9, 1 - 1e-6, 1 - 1e-10, 1 - 1e-15]
RTOL = 1e-9


def _engine(act, kind, depth, xi):
    """(value, complement) from the cached table, the path every user call takes."""
    table = kernel_function(act, kind, depth)
    x = np.array(xi)
    return table(x), np.exp(table.log_complement(x))


def _check(act, kind, depth, xi, value, complement):
    got, got_complement = _engine(act, kind, depth, xi)
    np.testing.assert_allclose(got, [float(mp.re(v)) for v in value], rtol=RTOL, atol=0)
    # atol: the 50-digit reference's own rounding near S = 1, where dual'(1 - eps) moves
    # like sqrt(eps): about L 1e-25 (1 - K_L(-1) = 0 exactly for the even abs)
    np.testing.assert_allclose(got_complement, [float(mp.re(c)) for c in complement], rtol=RTOL,
                               atol=1e-20)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_parabolic_dual_is_recognised_and_has_a_fatou_coordinate(name):
    act = CASES[name][0]()
    assert find_attractor(act.dual_function).kind == "parabolic"
    fatou = fatou_coordinate(act.dual_function)
    # Phi(f(x)) = Phi(x) + 1 on the closed-form map, at the largest x the jump uses
    delta = np.array([fatou.delta_star, fatou.delta_star / 10, fatou.delta_star / 1e4])
    x, fx = delta ** (1 / fatou.power), act.dual_function.complement(delta) ** (1 / fatou.power)
    y = np.log(x / fx)
    # y = log(x / f(x)) is rounded to ~2 ulp(1) absolutely and dPhi/dy = A / x there
    allowed = 2e-12 + 4 * np.finfo(float).eps * fatou.A / x
    assert np.all(np.abs(fatou.phi_difference(x, y) - 1.0) <= allowed)


def test_relu_fatou_coefficients_match_the_closed_forms():
    """A = 3 pi / sqrt 2 and kappa = 3/2 (in x = delta^(1/2)) for the normalized ReLU."""
    fatou = fatou_coordinate(infdepth.activation("relu").dual_function)
    assert fatou.A == pytest.approx(3 * math.pi / math.sqrt(2), rel=1e-14)
    assert fatou.kappa == pytest.approx(1.5, rel=1e-13)
    _, _, g, _ = relu_family("0.5")
    *_, phi1 = fatou_terms(g, 2)
    assert fatou.phi[0] == pytest.approx(float(phi1), rel=1e-12)


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("depth", [300, 3000])
@pytest.mark.parametrize("name", sorted(CASES))
def test_moderate_depths_match_the_mpmath_recursion(name, depth, kind):
    act, family = CASES[name][0](), CASES[name][1]()
    dual, derivative = family[0], family[1]
    values, complements = [], []
    for xi in POINTS:
        S, K = kernels(mp.mpf(xi), dual, derivative, depth)
        k = S if kind == "nngp" else K
        values.append(k)
        complements.append(1 - k)
    _check(act, kind, depth, POINTS, values, complements)


@pytest.mark.parametrize("name, depth, points", [
    ("relu", 10**4, [-1.0, 0.0, 0.9, 1 - 1e-10]),
    ("relu", 10**5, [-1.0, 0.5, 1 - 1e-15]),
    ("abs", 10**5, [-0.5, 1 - 1e-6]),
    ("leaky_relu", 10**5, [-1.0, 0.9]),
    ("polynomial", 10**5, [-1.0, 0.5, 1 - 1e-15]),
])
def test_deep_tables_match_the_mpmath_recursion(name, depth, points):
    act, family = CASES[name][0](), CASES[name][1]()
    S_ref, K_ref = zip(*(kernels(mp.mpf(x), family[0], family[1], depth) for x in points),
                       strict=True)
    _check(act, "nngp", depth, points, S_ref, [1 - s for s in S_ref])
    _check(act, "ntk", depth, points, K_ref, [1 - k for k in K_ref])


def test_asymptotic_reference_agrees_with_the_recursion():
    """The two references agree where both apply (so the deep one can be trusted)."""
    family = relu_family("0.5")
    for xi in ("-0.5", "0.99"):
        S, K = kernels(mp.mpf(xi), family[0], family[1], 10**5)
        delta, k, _ = deep_kernels(family, mp.mpf(xi), 10**5)
        assert float(abs(delta / (1 - S) - 1)) < 5e-11
        assert float(abs(k / K - 1)) < 5e-11


@pytest.mark.parametrize("name", sorted(CASES))
def test_great_depths_match_the_asymptotic_reference(name):
    act, family = CASES[name][0](), CASES[name][1]()
    for depth, points in ((10**6, [-0.99, 0.5]), (10**9, [0.0, 1 - 1e-12]),
                          (10**12, [0.9, 1 - 1e-15])):
        ref = [deep_kernels(family, mp.mpf(x), depth) for x in points]
        delta, k, e = zip(*ref, strict=True)
        _check(act, "nngp", depth, points, [1 - d for d in delta], delta)
        _check(act, "ntk", depth, points, k, e)


def test_antipodal_points_of_an_even_dual_stay_fixed():
    """abs is even: xi = -1 maps to 1 at the first layer, so k_L(-1) = k_L(1) = 1."""
    act = infdepth.activation("abs")
    for depth in (10**6, 10**12):
        for kind in ("nngp", "ntk"):
            assert float(kernel_function(act, kind, depth)(np.array([-1.0]))[0]) == 1.0


def test_relu_limits_of_theory():
    """1 - S_L -> 9 pi^2 / (2 L^2) for every xi > -1, and K_L / (L + 1) -> 1/4."""
    act = infdepth.activation("relu")
    xi = np.array([-0.99, 0.0, 0.5, 0.999])
    for depth in (10**9, 10**12):
        comp = np.exp(kernel_function(act, "nngp", depth).log_complement(xi))
        np.testing.assert_allclose(comp * depth**2, 9 * math.pi**2 / 2, rtol=30 / depth**0.5)
        np.testing.assert_allclose(infdepth.ntk(xi, act, depth), 0.25, rtol=1e-3)


def test_depth_ten_to_the_twelve_returns_within_seconds():
    """Not a benchmark (see benchmarks/kernels.py): a generous bound that catches a hang."""
    act = infdepth.activation("relu")
    act._cache.clear()
    start = time.perf_counter()
    values = infdepth.ntk(np.linspace(-1, 1, 10_000), act, 10**12)
    assert time.perf_counter() - start < 30
    assert np.all(np.isfinite(values))


def test_depth_bounds():
    act = infdepth.activation("relu")
    top = infdepth.ntk(np.array([0.0, 0.5]), act, 2**63)
    np.testing.assert_allclose(top, 0.25, rtol=1e-6)
    with pytest.raises(ValueError, match="2\\^63"):
        infdepth.ntk(0.5, act, 2**63 + 1)


def test_numerical_relu_is_parabolic_for_taxonomy_and_classifier():
    """ReLU given as a callable: one decision (tail-corrected m = 1) everywhere."""
    twin = Activation.from_callable(lambda x: np.maximum(x, 0.0), name="relu_callable")
    assert twin.dual_function.slope_at_one < 0.995  # the truncated series alone says m < 1
    assert find_attractor(twin.dual_function).kind == "parabolic"
    assert infdepth.limit(twin, oscillation=False).regime == "parabolic"
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 2
    clf = infdepth.InfiniteNetworkClassifier(twin, depth=math.inf).fit(X, y)
    assert clf.attractor_ == "parabolic"
    with pytest.raises(ValueError, match="majority vote"):
        kernel_function(twin, "nngp", math.inf)
