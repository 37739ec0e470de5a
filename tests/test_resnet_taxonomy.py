"""The degenerate limits of infinitely deep ResNets (branch exponent < 1/2), docs/resnet.md §6.

The classification reads phi at large arguments only; every test checks it against the
depth recursion itself (the library's, or an independent closed-form one written here)
or against integrals computed independently with scipy / mpmath.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import erf, expit

import infdepth
from infdepth import InfiniteNetworkClassifier
from infdepth.resnet import resnet_state
from infdepth.resnet_taxonomy import large_variance_form, resnet_limit


def _gauss_norm(fn) -> float:
    """1 / sqrt(E[fn(u)^2]), u ~ N(0, 1), by scipy quadrature."""
    second, _ = quad(lambda u: fn(u) ** 2 * math.exp(-u * u / 2) / math.sqrt(2 * math.pi),
                     -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13)
    return 1 / math.sqrt(second)


def _softplus(u):
    return float(np.logaddexp(0.0, u))


@pytest.mark.parametrize("name, degree, plus, minus", [
    ("relu", 1, math.sqrt(2), 0.0),
    ("erf", 0, 1 / math.sqrt(2 / math.pi * math.asin(2 / 3)),
     -1 / math.sqrt(2 / math.pi * math.asin(2 / 3))),
    ("tanh", 0, _gauss_norm(math.tanh), -_gauss_norm(math.tanh)),
    ("sigmoid", 0, _gauss_norm(lambda u: float(expit(u))), 0.0),
    ("softplus", 1, _gauss_norm(_softplus), 0.0),
])
def test_large_variance_form_of_builtins(name, degree, plus, minus):
    """phi(s x) ~ s^k h(x): the degree and h's two coefficients, against the normalization
    constants integrated independently (E erf(u)^2 = (2/pi) arcsin(2/3))."""
    form = large_variance_form(infdepth.activation(name))
    assert form.degree == degree
    assert form.a_plus == pytest.approx(plus, rel=1e-8)
    assert form.a_minus == pytest.approx(minus, rel=1e-8, abs=1e-12)


def test_sin_is_oscillating_with_mean_zero():
    """sin has no power law at infinity; its mean over large arguments is 0 and its mean
    square is (1/2) / E[sin(u)^2] = 1 / (1 - e^-2) for the normalized sin."""
    form = large_variance_form(infdepth.activation("sin"))
    assert form.degree is None
    assert abs(form.mean) < 1e-6
    assert form.power == pytest.approx(1 / (1 - math.exp(-2)), rel=1e-4)
    lim = resnet_limit("sin", 0.0)
    assert (lim.rule, lim.point, lim.exponent) == ("singular", 0.0, 1.0)


@pytest.mark.parametrize("name, rule", [
    ("relu", "majority_vote"), ("abs", "majority_vote"), ("gelu", "majority_vote"),
    ("silu", "majority_vote"), ("softplus", "majority_vote"), ("sigmoid", "majority_vote"),
    ("erf", "singular"), ("tanh", "singular"), ("sin", "singular"),
])
@pytest.mark.parametrize("gamma", [0.0, 0.25])
def test_degenerate_rule_of_builtins(name, rule, gamma):
    lim = infdepth.limit(name, architecture="resnet", branch_exponent=gamma)
    assert lim.kind == "degenerate" and lim.rule == rule


def test_odd_bounded_exponent_is_one_minus_two_over_pi():
    """erf and tanh tend to the sign function: D_h = (2/pi) arcsin, slope 2/pi at 0."""
    for name in ("erf", "tanh"):
        lim = resnet_limit(name, 0.0)
        assert lim.regime == "zero" and lim.exponent == pytest.approx(1 - 2 / math.pi, abs=1e-12)


def _shifted_erf(x):
    return erf(x) + 0.5


def test_interior_point_against_an_independent_recursion():
    """phi = erf(x) + 1/2 has a mean at large variance: the NNGP correlation tends to the
    interior rho* of (m^2 + s^2 (2/pi) arcsin rho) / (m^2 + s^2) = rho, m = 1/2, s = 1
    (mpmath root), and the library finds it from phi at large arguments alone. The depth
    recursion, written here in closed form (E[phi phi] at variance q is
    1/4 + (2/pi) arcsin(2 q rho / (1 + 2 q))), run to L = 10^6 at fixed beta = 1 and
    extrapolated with rho_L = rho* + c1 L^-exponent + c2 L^-1/2 (A(q) - A(inf) ~ q^-1/2),
    lands on the same rho*."""
    lim = resnet_limit(infdepth.Activation.from_callable(_shifted_erf), 0.0)
    assert lim.rule == "majority_vote" and lim.regime == "interior"
    exact = float(mpmath.findroot(
        lambda r: (mpmath.mpf(1) / 4 + 2 / mpmath.pi * mpmath.asin(r)) / (mpmath.mpf(5) / 4) - r,
        0.4))
    assert lim.point == pytest.approx(exact, abs=1e-12)
    slope = 2 / math.pi / math.sqrt(1 - exact**2) / 1.25
    assert lim.exponent == pytest.approx(1 - slope, abs=1e-9)

    depths = (10**4, 10**5, 10**6)
    q, rho, out = 1.0, 0.3, []
    for layer in range(1, depths[-1] + 1):
        A = 0.25 + 2 / math.pi * math.asin(2 * q / (1 + 2 * q))
        C = 0.25 + 2 / math.pi * math.asin(2 * q * rho / (1 + 2 * q))
        rho, q = (q * rho + C) / (q + A), q + A
        if layer in depths:
            out.append(rho)
    assert out[0] > out[1] > out[2] > exact  # monotone approach from above
    T = np.array(depths, dtype=float)
    fit = np.linalg.solve(np.column_stack([np.ones(3), T ** -lim.exponent, T ** -0.5]), out)
    assert fit[0] == pytest.approx(exact, abs=1e-4)


def test_sin_rate_is_one_over_T():
    """sin: D_h = 0 off the diagonal, so rho_T T converges (gamma = 1/4, T = L^(1/2); the
    closed-form sine dual stops at variance 300, so fixed beta reaches only L ~ 250)."""
    act = infdepth.activation("sin")
    x = np.array([0.5, 0.9])
    c = [resnet_state(act, "nngp", L, x, branch_exponent=0.25).rho * math.sqrt(L)
         for L in (250, 1000, 4000)]
    # the corrections are O(1/T): each doubling of T halves the change of rho_T T
    assert np.all(np.abs(c[2] - c[1]) < 0.6 * np.abs(c[1] - c[0]))
    local_exponent = 1 - np.log(c[2] / c[1]) / math.log(2)  # of rho_T ~ T^-exponent
    assert np.allclose(local_exponent, 1.0, atol=0.02)


def test_erf_ntk_diagonal_grows_like_exp_sqrt_T():
    """The NTK's diagonal outruns its off-diagonal values: with A' = E[phi'(sqrt(q) u)^2]
    ~ kappa0 / sqrt(q) and q ~ A_inf L, log Theta_xx ~ 2 kappa sqrt(L), kappa =
    int phi'^2 dx / sqrt(2 pi A_inf) = (2/pi) c for phi = c erf(x). A fit
    log tau = 2 kappa sqrt(L) + p log L + r through L = 10^3, 4 10^3, 1.6 10^4 finds it."""
    act = infdepth.activation("erf")
    c = 1 / math.sqrt(2 / math.pi * math.asin(2 / 3))
    depths = (1000, 4000, 16000)
    states = [resnet_state(act, "ntk", L, np.array([0.5]), branch_exponent=0.0) for L in depths]
    M = np.array([[math.sqrt(L), math.log(L), 1.0] for L in depths])
    two_kappa = np.linalg.solve(M, np.log([s.tau for s in states]))[0]
    assert two_kappa == pytest.approx(2 * (2 / math.pi) * c, rel=1e-3)
    ntk = states[-1].kernel("ntk")[0][0]
    nngp = states[-1].kernel("nngp")[0][0]
    assert 0 < ntk < 1e-50 < nngp  # the normalized NTK vanishes far faster


def test_classifier_votes_where_the_limit_is_the_majority_vote():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = (X[:, 0] > 0.4).astype(int)  # class 0 is the majority
    clf = InfiniteNetworkClassifier("sigmoid", depth=math.inf, architecture="resnet",
                                    branch_exponent=0.0).fit(X, y)
    assert clf.rule_ == "majority_vote"
    assert np.all(clf.predict(rng.standard_normal((7, 3))) == np.bincount(y).argmax())
    with pytest.raises(ValueError, match="'singular'.*finite depth"):
        InfiniteNetworkClassifier("erf", depth=math.inf, architecture="resnet",
                                  branch_exponent=0.25).fit(X, y)


def test_unclassifiable_activations_raise():
    with pytest.raises(ValueError, match="linear at infinity"):
        resnet_limit(infdepth.Activation.from_callable(lambda x: x + np.sin(x)), 0.0)
    with pytest.raises(ValueError, match="not finite"):
        resnet_limit(infdepth.Activation.from_callable(lambda x: np.exp(np.minimum(x, 5)) *
                                                       np.cosh(x / 50)), 0.0)
