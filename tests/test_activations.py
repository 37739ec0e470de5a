"""Activations and duals against independent computations (quadrature, mpmath)."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import integrate
from scipy.special import erf, expit

from infdepth import Activation, activation

XI = np.linspace(-1, 1, 401)

RAW = {
    "relu": (lambda x: np.maximum(x, 0.0), {}),
    "abs": (np.abs, {}),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.2 * x), {"slope": 0.2}),
    "erf": (erf, {}),
    "sin": (lambda x: np.sin(1.7 * x), {"frequency": 1.7}),
    "sine_family": (lambda x: np.sin(math.sqrt(2.676) * x), {"a": 2.676}),
}


def gaussian_expectation(f, kink: float = 0.0) -> float:
    """E[f(u)], u ~ N(0, 1), by adaptive quadrature split at a possible kink."""
    def g(u):
        return f(u) * math.exp(-u * u / 2) / math.sqrt(2 * math.pi)

    left, _ = integrate.quad(g, -12, min(kink, 12), epsabs=1e-14, epsrel=1e-13, limit=200)
    right, _ = integrate.quad(g, max(kink, -12), 12, epsabs=1e-14, epsrel=1e-13, limit=200)
    return left + right


def gaussian_pair_expectation(f, xi: float) -> float:
    """E[f(u) f(v)], corr(u, v) = xi, v = xi u + sqrt(1 - xi^2) w, as nested 1-D quadratures.

    The inner integral over w is split where v crosses 0 (the kink of ReLU-like f).
    """
    c = math.sqrt(max(1 - xi * xi, 0.0))
    if c == 0:
        return gaussian_expectation(lambda u: f(u) * f(xi * u))

    def inner(u):
        return gaussian_expectation(lambda w: f(xi * u + c * w), kink=-xi * u / c)

    return gaussian_expectation(lambda u: f(u) * inner(u))


@pytest.mark.parametrize("name", ["relu", "erf", "sin"])
def test_closed_form_dual_matches_two_dimensional_quadrature(name):
    raw, params = RAW[name]
    act = activation(name, **params)
    norm = gaussian_pair_expectation(lambda x: float(raw(np.array(x))), 1.0)
    for xi in (-0.7, 0.2, 0.9):
        expected = gaussian_pair_expectation(lambda x: float(raw(np.array(x))), xi) / norm
        assert float(act.dual(xi)) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("name", ["erf", "sin", "sine_family"])
def test_smooth_closed_forms_agree_with_numerical_dual(name):
    raw, params = RAW[name]
    closed = activation(name, **params)
    numeric = Activation.from_callable(raw)
    assert np.max(np.abs(closed.dual(XI) - numeric.dual(XI))) < 1e-10
    assert np.max(np.abs(closed.dual_derivative(XI) - numeric.dual_derivative(XI))) < 1e-9
    assert numeric.dual_error < 1e-10


@pytest.mark.parametrize("name", ["relu", "abs", "leaky_relu"])
def test_kinked_closed_forms_agree_within_an_honest_error_estimate(name):
    raw, params = RAW[name]
    closed = activation(name, **params)
    numeric = Activation.from_callable(raw)
    error = np.max(np.abs(closed.dual(XI) - numeric.dual(XI)))
    # the estimate bounds the error and is not vacuous (within a factor 20)
    assert error <= numeric.dual_error
    assert numeric.dual_error < 20 * error


@pytest.mark.parametrize(
    "name,params", [("relu", {}), ("abs", {}), ("leaky_relu", {"slope": 0.2}),
                    ("erf", {}), ("erf", {"scale": 3.0}), ("sine_family", {"a": 13.8258}),
                    ("tanh", {}), ("gelu", {}), ("hermite", {"degree": 3})],
)
def test_normalization_and_phi(name, params):
    act = activation(name, **params)
    assert float(act.dual(1.0)) == pytest.approx(1.0, abs=1e-13)
    # E[phi(u)^2] = 1 and E[phi(u)]^2 = dual(0), by adaptive quadrature
    def phi(u):
        return float(act(np.array(u)))

    assert gaussian_expectation(lambda u: phi(u) ** 2) == pytest.approx(1.0, abs=1e-11)
    assert gaussian_expectation(phi) ** 2 == pytest.approx(act.value_at_zero, abs=1e-11)


def mp_relu_dual(x):
    return (mp.sqrt(1 - x * x) + (mp.pi - mp.acos(x)) * x) / mp.pi


@pytest.mark.parametrize("delta", [1e-15, 1e-12, 1e-8, 1e-3, 0.3, 1.5])
def test_complement_is_accurate_for_tiny_delta(delta):
    mp.mp.dps = 50
    d = mp.mpf(delta)
    references = {
        "relu": 1 - mp_relu_dual(1 - d),
        "erf": 1 - mp.asin(2 * (1 - d) / 3) / mp.asin(mp.mpf(2) / 3),
        "sine_family": 1 - mp.sinh(mp.mpf("2.676") * (1 - d)) / mp.sinh(mp.mpf("2.676")),
    }
    for name, ref in references.items():
        act = activation(name, **({"a": 2.676} if name == "sine_family" else {}))
        got = float(act.dual_complement(delta))
        assert got == pytest.approx(float(ref), rel=1e-12), name
    # polynomial (Hermite-series) duals use the re-expansion about 1
    act = Activation.from_dual_coefficients([0.1, 0.2, 0.3, 0.4])
    ref = 1 - sum(mp.mpf(c) * (1 - d) ** k for k, c in enumerate([0.1, 0.2, 0.3, 0.4]))
    assert float(act.dual_complement(delta)) == pytest.approx(float(ref), rel=1e-12)


def test_relu_dual_accurate_near_minus_one():
    mp.mp.dps = 50
    for eps in (1e-12, 1e-6, 1e-2):
        xi = -1 + eps  # exactly representable offsets from -1 in float
        ref = mp_relu_dual(mp.mpf(xi))
        assert float(activation("relu").dual(xi)) == pytest.approx(float(ref), rel=1e-12)


def test_from_dual_coefficients_phi_has_that_dual():
    c = np.array([0.0, 0.25, 0.5, 0.25])
    act = Activation.from_dual_coefficients(c)
    numeric = Activation.from_callable(act)  # quadrature of phi itself
    assert np.max(np.abs(numeric.dual(XI) - np.polynomial.polynomial.polyval(XI, c))) < 1e-12
    np.testing.assert_allclose(act.hermite_coefficients, np.sqrt(c), atol=1e-15)


def test_numerical_builtins_match_their_definitions():
    x = np.array([-3.0, -1.0, -0.5, 0.5, 1.0, 3.0])
    for name, raw in [("tanh", np.tanh), ("sigmoid", expit),
                      ("softplus", lambda t: np.log1p(np.exp(t)))]:
        act = activation(name)
        ratio = act(x) / raw(x)
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="E\\[phi"):
        Activation.from_callable(lambda x: 0 * x)
    with pytest.raises(ValueError, match="not normalizable"):
        Activation.from_callable(lambda x: np.exp(x**2 / 3))
    with pytest.raises(ValueError, match="finite"):
        Activation.from_callable(np.log)  # NaN for x < 0
    with pytest.raises(ValueError, match="unknown activation"):
        activation("swishy")
    with pytest.raises(ValueError, match="non-negative"):
        Activation.from_dual_coefficients([0.5, -0.1])
    with pytest.raises(ValueError, match="sum to zero"):
        Activation.from_dual_coefficients([0.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        activation("relu").dual(np.nan)
    with pytest.raises(ValueError, match="\\[-1, 1\\]"):
        activation("relu").dual(1.5)
    with pytest.raises(ValueError, match="takes no parameters"):
        activation("relu", slope=2)
