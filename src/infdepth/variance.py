"""Duals at a given variance: E[phi(sigma_x u) phi(sigma_z v)], corr(u, v) = rho.

The MLP recursion only ever needs the dual at variance 1, because every pre-activation of
a normalized network has unit variance. A residual network adds the block's output to its
input, so the variance q_l(x, x) grows along depth and each block needs the dual of
x -> phi(sigma x) (docs/resnet.md, section 2). This module is the one mechanism for it:

* the general route (any activation): the orthonormal Hermite coefficients
  b_k(sigma) = E[phi(sigma u) He_k(u)] / sqrt(k!) by the same composite Gauss-Legendre
  quadrature as :func:`infdepth.activations.hermite_coefficients`, and then
  E[phi(sigma_x u) phi(sigma_z v)] = sum_k b_k(sigma_x) b_k(sigma_z) rho^k;
* closed forms where they exist, as optimizations with the same interface:
  positively homogeneous activations (ReLU, leaky ReLU, abs): sigma_x sigma_z dphi(rho);
  erf(s x): arcsin(2 s^2 q_xz / sqrt((1 + 2 s^2 q_xx)(1 + 2 s^2 q_zz))) / arcsin(b);
  sin(sqrt(a) x): exp(-a (q_xx + q_zz) / 2) sinh(a q_xz) / ((1 - e^{-2a}) / 2).

The dual at variance is *not* a function of the variance-1 dual (phi and a sign-flipped
Hermite expansion have the same dual at sigma = 1 and different ones elsewhere), so it is
computed from phi itself; ``Activation.variance_form`` names the closed form, if any.

With equal variances q on both sides (all a network on the sphere needs),
``V(q; rho) = A(q) D_q(rho)`` with A(q) = E[phi(sqrt(q) u)^2] and D_q a normalized
:class:`~infdepth.duals.Dual`; :func:`variance_dual` returns that pair, so that the
complements 1 - D_q(1 - delta) and D_q'(1) - D_q'(1 - delta) are free of cancellation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .duals import ArcsinDual, Dual, SeriesDual, SinhDual
from .hermite import QUADRATURE, QUADRATURE_HERMITE, check_inner_products, trim_coefficients

__all__ = ["VarianceDual", "variance_dual", "dual_at_variance",
           "dual_at_variance_derivative", "hermite_coefficients_at"]

#: Largest variance sigma^2 the Hermite route accepts: phi(sigma u) is sampled on
#: |u| <= 14, and beyond this the expansion of a generic phi needs too many terms.
MAX_HERMITE_VARIANCE = 1e4


@dataclass(frozen=True)
class VarianceDual:
    """The dual at equal variances q: V(q; rho) = scale * dual(rho).

    Attributes
    ----------
    scale : float
        A(q) = E[phi(sqrt(q) u)^2].
    dual : Dual
        The normalized dual D_q (D_q(1) = 1) of x -> phi(sqrt(q) x) / sqrt(A(q)).
    error : float
        Bound on max |V - exact| / A over rho in [-1, 1] (0 for closed forms).
    """

    scale: float
    dual: Dual
    error: float = 0.0


def _check_sigma(sigma, name: str) -> float:
    sigma = float(sigma)
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"{name} must be a positive finite standard deviation, got {sigma!r}")
    return sigma


def hermite_coefficients_at(act, sigma: float) -> tuple[np.ndarray, float]:
    """(b, A): b_k = E[phi(sigma u) He_k(u)] / sqrt(k!) (k <= 512) and A = E[phi(sigma u)^2].

    Raises ``ValueError`` if sigma^2 > ``MAX_HERMITE_VARIANCE`` or phi(sigma u) is not
    finite on the quadrature nodes.
    """
    sigma = _check_sigma(sigma, "sigma")
    if sigma * sigma > MAX_HERMITE_VARIANCE:
        raise ValueError(
            f"the dual of {act.name} at variance {sigma * sigma:.4g} is outside the range of "
            f"the Hermite route (variance <= {MAX_HERMITE_VARIANCE:g})"
        )
    key = ("hermite_at", sigma)
    cached = act._cache.get(key)
    if cached is not None:
        return cached
    y = np.asarray(act.function(sigma * QUADRATURE.nodes), dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{act.name}(sigma u) is not finite on the quadrature nodes "
                         f"(sigma = {sigma:g})")
    second = float(QUADRATURE.weights @ (y * y))
    b = trim_coefficients(QUADRATURE_HERMITE @ y)
    if len(act._cache) < 4096:  # the finite-depth recursion visits many sigmas once
        act._cache[key] = (b, second)
    return b, second


def variance_dual(act, q: float) -> VarianceDual:
    """V(q; rho) = E[phi(sqrt(q) u) phi(sqrt(q) v)] = A(q) D_q(rho) as a :class:`VarianceDual`.

    Closed forms (``act.variance_form``): ``"homogeneous"`` (degree-1 positively
    homogeneous phi): A = q, D_q = dphi; ``("erf", s)``: A = arcsin(b_q) / arcsin(b_1),
    D_q = arcsin(b_q rho) / arcsin(b_q) with b_q = 2 s^2 q / (1 + 2 s^2 q);
    ``("sine", a)``: A = (1 - e^{-2aq}) / (1 - e^{-2a}), D_q = sinh(a q rho) / sinh(a q).
    Otherwise D_q is the :class:`SeriesDual` of b_k(sqrt(q))^2 (error: twice the tail).
    """
    q = float(q)
    if not (math.isfinite(q) and q > 0):
        raise ValueError(f"the variance must be positive and finite, got {q!r}")
    form = getattr(act, "variance_form", None)
    if form == "homogeneous":
        return VarianceDual(q, act.dual_function)
    if isinstance(form, tuple) and form[0] == "erf":
        s2 = form[1] ** 2
        bq = 2 * s2 * q / (1 + 2 * s2 * q)
        b1 = 2 * s2 / (1 + 2 * s2)
        return VarianceDual(math.asin(bq) / math.asin(b1), ArcsinDual(bq))
    if isinstance(form, tuple) and form[0] == "sine":
        a = form[1]
        if a * q > 300:
            raise ValueError(f"sine family at variance {q:g}: a q = {a * q:g} > 300")
        return VarianceDual(math.expm1(-2 * a * q) / math.expm1(-2 * a), SinhDual(a * q))
    b, second = hermite_coefficients_at(act, math.sqrt(q))
    tail = max(second - float(b @ b), 0.0)
    return VarianceDual(second, SeriesDual(b * b), 2 * tail / second + 1e-14)


def _pair(act, rho, sigma_x, sigma_z):
    sigma_x = _check_sigma(sigma_x, "sigma_x")
    sigma_z = sigma_x if sigma_z is None else _check_sigma(sigma_z, "sigma_z")
    return check_inner_products(rho), sigma_x, sigma_z


def dual_at_variance(act, rho, sigma_x: float = 1.0, sigma_z: float | None = None):
    """E[phi(sigma_x u) phi(sigma_z v)] for standard normals u, v with corr(u, v) = rho.

    This is V_phi(q)(x, z) for q_xx = sigma_x^2, q_zz = sigma_z^2, q_xz = sigma_x sigma_z rho.
    ``sigma_z`` defaults to ``sigma_x``.
    """
    rho, sx, sz = _pair(act, rho, sigma_x, sigma_z)
    form = getattr(act, "variance_form", None)
    if form == "homogeneous":
        return sx * sz * act.dual_function.value(rho)
    if isinstance(form, tuple) and form[0] == "erf":
        s2 = form[1] ** 2
        c = 2 * s2 * sx * sz / math.sqrt((1 + 2 * s2 * sx * sx) * (1 + 2 * s2 * sz * sz))
        return np.arcsin(c * rho) / math.asin(2 * s2 / (1 + 2 * s2))
    if isinstance(form, tuple) and form[0] == "sine":
        a = form[1]
        norm = -math.expm1(-2 * a) / 2
        return np.exp(-a * (sx * sx + sz * sz) / 2) * np.sinh(a * sx * sz * rho) / norm
    bx, _ = hermite_coefficients_at(act, sx)
    bz, _ = hermite_coefficients_at(act, sz)
    n = min(bx.size, bz.size)
    return np.polynomial.polynomial.polyval(rho, bx[:n] * bz[:n])


def dual_at_variance_derivative(act, rho, sigma_x: float = 1.0, sigma_z: float | None = None):
    """d/dq_xz of :func:`dual_at_variance` = E[phi'(sigma_x u) phi'(sigma_z v)] (Price).

    Equals (1 / (sigma_x sigma_z)) d/drho E[phi(sigma_x u) phi(sigma_z v)].
    """
    rho, sx, sz = _pair(act, rho, sigma_x, sigma_z)
    form = getattr(act, "variance_form", None)
    if form == "homogeneous":
        return act.dual_function.derivative(rho)
    if isinstance(form, tuple) and form[0] == "erf":
        s2 = form[1] ** 2
        c = 2 * s2 * sx * sz / math.sqrt((1 + 2 * s2 * sx * sx) * (1 + 2 * s2 * sz * sz))
        scale = math.asin(2 * s2 / (1 + 2 * s2))
        return c / np.sqrt(1 - (c * rho) ** 2) / scale / (sx * sz)
    if isinstance(form, tuple) and form[0] == "sine":
        a = form[1]
        norm = -math.expm1(-2 * a) / 2
        return a * np.exp(-a * (sx * sx + sz * sz) / 2) * np.cosh(a * sx * sz * rho) / norm
    bx, _ = hermite_coefficients_at(act, sx)
    bz, _ = hermite_coefficients_at(act, sz)
    n = min(bx.size, bz.size)
    c = (bx[:n] * bz[:n] * np.arange(n))[1:]
    if c.size == 0:
        return np.zeros_like(rho)
    return np.polynomial.polynomial.polyval(rho, c) / (sx * sz)
