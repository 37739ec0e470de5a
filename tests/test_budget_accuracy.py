"""Accuracy of the depth jumps added for the first-call budget (issue 12).

* Kinked callables (ReLU, abs, leaky ReLU given as numpy functions): the parabolic model
  of their truncated Hermite series (infdepth.kink) against the closed-form duals, and
  its kernels against the closed-form kernels at depths 10 .. 10^12, the 50-digit
  recursion (tests/reference.py) and the independent asymptotic reference
  (tests/reference_parabolic.py).
* Superattracting 0 (nearest-neighbour duals): the log-form jump against the exact
  log k_L = 2^L log|xi| of dual = xi^2 and the 50-digit recursion of a mixed dual.

Tolerances: the model reproduces the closed-form dual to the quadrature's rounding
(coefficients c_k with ~1e-14 absolute error, Q_TOLERANCE = 1e-14); the kernels then
agree to 1e-11 relative, 1e3 times above that, at every depth (the error does not grow
with depth: delta_L depends on the (1 - xi)^(3/2) amplitude, which is exact here).
"""

from __future__ import annotations

import math
import time

import mpmath as mp
import numpy as np
import pytest
from reference import kernels
from reference_parabolic import deep_kernels, relu_family

import infdepth
from infdepth import Activation, kernel_function
from infdepth.dynamics import find_attractor
from infdepth.kink import KinkedSeriesDual, parabolic_model

KINKED = {  # name: (callable, closed-form activation, kinked weight beta^2/(alpha^2+beta^2))
    "relu": (lambda x: np.maximum(x, 0.0), lambda: infdepth.activation("relu"), 0.5),
    "abs": (np.abs, lambda: infdepth.activation("abs"), 1.0),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.2 * x),
                   lambda: infdepth.activation("leaky_relu", slope=0.2), 0.64 / 2.08),
}
XI = np.concatenate([np.linspace(-1, 1, 201), 1 - np.logspace(-15, -2, 14),
                     -1 + np.logspace(-15, -2, 14)])


@pytest.mark.parametrize("name", sorted(KINKED))
def test_kinked_model_reproduces_the_closed_form_dual(name):
    fn, closed, _ = KINKED[name]
    act = Activation.from_callable(fn)
    truncated = act.dual_function
    model = parabolic_model(truncated)
    assert isinstance(model, KinkedSeriesDual)
    assert truncated.slope_at_one < 0.995 and model.slope_at_one == 1.0
    assert find_attractor(model, tail=False).kind == "parabolic"
    exact = closed().dual_function
    # the truncated series alone is off by its missing tail (depth-1 error ~7e-6 for relu)
    assert np.max(np.abs(truncated.value(XI) - exact.value(XI))) > 1e-6
    np.testing.assert_allclose(model.value(XI), exact.value(XI), rtol=0, atol=1e-13)
    inner = XI[np.abs(XI) < 1]
    np.testing.assert_allclose(model.derivative(inner), exact.derivative(inner), rtol=0,
                               atol=1e-13)
    d = np.logspace(-16, 0, 40)
    np.testing.assert_allclose(model.complement(d), exact.complement(d), rtol=1e-12)
    np.testing.assert_allclose(model.derivative_complement(d), exact.derivative_complement(d),
                               rtol=1e-12)
    # beta (from dual'(1) = 1) equals the top-block coefficient ratio (an independent fit)
    assert model.beta == pytest.approx(model.tail_coefficient_ratio, rel=1e-8)
    # the (1 - xi)^(3/2) amplitude in x = delta^(1/2): kinked (2/pi) (2 sqrt 2 / 3)
    _, a = model.parabolic_expansion(8)
    np.testing.assert_allclose(a[3], -KINKED[name][2] * 4 * math.sqrt(2) / (3 * math.pi),
                               rtol=1e-12)


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_relu_callable_matches_closed_form_kernels_at_every_depth(kind):
    for depth in (10, 10**3, 10**6, 10**12):
        act = Activation.from_callable(KINKED["relu"][0])
        start = time.perf_counter()
        table = kernel_function(act, kind, depth)
        got = table(XI)
        assert time.perf_counter() - start < 10  # generous: a budget, not a benchmark
        ref = kernel_function("relu", kind, depth)
        np.testing.assert_allclose(got, ref(XI), rtol=1e-11, atol=1e-300)
        np.testing.assert_allclose(table.log_complement(XI), ref.log_complement(XI),
                                   rtol=0, atol=1e-11)


def test_relu_callable_against_the_mpmath_recursion_and_asymptotics():
    act = Activation.from_callable(KINKED["relu"][0])
    family = relu_family("0.5")
    points = [-1.0, 0.0, 0.5, 1 - 1e-10]
    for depth in (300, 3000):
        s_table = kernel_function(act, "nngp", depth)
        k_table = kernel_function(act, "ntk", depth)
        for xi in points:
            S, K = kernels(mp.mpf(xi), family[0], family[1], depth)
            assert s_table(np.array([xi]))[0] == pytest.approx(float(S), rel=1e-11)
            assert k_table(np.array([xi]))[0] == pytest.approx(float(K), rel=1e-11)
            assert math.exp(s_table.log_complement(np.array([xi]))[0]) == pytest.approx(
                float(1 - S), rel=1e-10)
    depth = 10**9
    s_table = kernel_function(act, "nngp", depth)
    k_table = kernel_function(act, "ntk", depth)
    for xi in (0.0, 0.5):
        delta, k, e = deep_kernels(family, mp.mpf(xi), depth)
        assert math.exp(s_table.log_complement(np.array([xi]))[0]) == pytest.approx(
            float(delta), rel=1e-9)
        assert k_table(np.array([xi]))[0] == pytest.approx(float(k), rel=1e-9)
        assert math.exp(k_table.log_complement(np.array([xi]))[0]) == pytest.approx(
            float(e), rel=1e-9)


# ------------------------------------------------------------ superattracting zero
@pytest.mark.parametrize("make", [lambda: Activation.from_dual_coefficients([0, 0, 1]),
                                  lambda: Activation.from_callable(lambda x: x * x - 1)],
                         ids=["xi^2", "x^2-1"])
def test_superattracting_square_is_exact_in_log_form(make):
    """dual = xi^2: S_L = xi^(2^L) and (rho_L = 2^(L+1) - 1 = D_L) k_L = S_L exactly."""
    xi = np.concatenate([np.linspace(-0.999, 0.999, 101), 1 - np.logspace(-12, -2, 6)])
    for depth in (10, 100, 1000):
        ref = 2.0**depth * np.log(np.abs(xi))
        for kind in ("nngp", "ntk"):
            act = make()
            sign, logabs = kernel_function(act, kind, depth).log(xi)
            # relative: rounding of log|xi| (1 ulp) and the table (1e-12 relative)
            np.testing.assert_allclose(logabs, ref, rtol=1e-11)
            assert np.all(sign == 1)
    for kind in ("nngp", "ntk"):  # past float64's range the log value is -inf (k = 0)
        sign, logabs = kernel_function(make(), kind, 10**6).log(np.array([0.5, 0.99]))
        assert np.all(np.isneginf(logabs))


def test_superattracting_mixed_dual_against_the_mpmath_recursion():
    coefficients = [0, 0, 0.7, 0.3]
    act = Activation.from_dual_coefficients(coefficients)
    assert find_attractor(act.dual_function).kind == "superattracting_zero"
    c = [mp.mpf(v) for v in coefficients]

    def dual(x):
        return sum(ck * x**k for k, ck in enumerate(c))

    def derivative(x):
        return sum(k * ck * x ** (k - 1) for k, ck in enumerate(c) if k)

    points = [-0.9, -0.3, 0.2, 0.7, 0.95]
    for depth in (6, 40):
        nngp, ntk = (kernel_function(act, kind, depth) for kind in ("nngp", "ntk"))
        for xi in points:
            S, K = kernels(mp.mpf(xi), dual, derivative, depth)
            for table, ref in ((nngp, S), (ntk, K)):
                sign, logabs = table.log(np.array([xi]))
                assert sign[0] == mp.sign(ref)
                assert logabs[0] == pytest.approx(float(mp.log(abs(ref))), rel=1e-11)


def test_superattracting_first_call_is_bounded_in_depth():
    xi = np.random.default_rng(0).uniform(-1, 1, 2000)
    for depth in (10**3, 10**12):
        act = Activation.from_dual_coefficients([0, 0, 1])
        start = time.perf_counter()
        kernel_function(act, "ntk", depth)(xi)
        assert time.perf_counter() - start < 10
