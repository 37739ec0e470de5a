"""Dual activations: the functions xi -> E[phi(u) phi(v)] that drive every kernel.

Every normalized dual is a power series with non-negative coefficients,
``dual(xi) = sum_k c_k xi^k`` with ``sum_k c_k = 1`` (docs/theory.md section 2).
:class:`SeriesDual` implements that general mechanism from the coefficients.
The closed forms below (:class:`ReluFamilyDual`, :class:`ArcsinDual`,
:class:`SinhDual`) are optimizations of it: they evaluate the same function
faster and more accurately, and they expose the same five quantities

* ``value(xi)``                   dual(xi)
* ``derivative(xi)``              dual'(xi)
* ``complement(delta)``           1 - dual(1 - delta), free of cancellation
* ``derivative_complement(delta)`` dual'(1) - dual'(1 - delta), free of cancellation
* ``leading_term()``              (p, c) with dual(s) ~ c s^p as s -> 0

so that the kernel engine never needs to know which kind it is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import comb

#: Coefficients below this fraction of the total are treated as exact zeros when
#: deciding parity and small-argument behaviour of a numerically computed dual.
COEFFICIENT_TOLERANCE = 1e-20


#: Coefficients per block of :func:`polyval` (16: measured fastest on 10^3-10^4 points).
POLYVAL_BLOCK = 16


def polyval(x, coefficients: np.ndarray) -> np.ndarray:
    """sum_k c_k x^k, for the long series of numerical duals (200+ Hermite terms).

    numpy's Horner loop makes one pass over x per coefficient; here the coefficients are
    cut into blocks of B = 16, the block polynomials are one product of the (blocks x B)
    coefficient matrix with the powers x^0 .. x^(B-1) (``einsum``: no BLAS threads), and
    Horner runs over the blocks in y = x^B: about 5x faster at 224 terms, with Horner's
    error bound (a few ulp of sum_k |c_k x^k|). Short series use numpy's polyval.
    """
    x = np.asarray(x, dtype=float)
    c = np.asarray(coefficients, dtype=float)
    if c.size <= 2 * POLYVAL_BLOCK:
        return np.polynomial.polynomial.polyval(x, c)
    rows = -(-c.size // POLYVAL_BLOCK)
    blocks = np.zeros(rows * POLYVAL_BLOCK)
    blocks[:c.size] = c
    blocks = blocks.reshape(rows, POLYVAL_BLOCK)
    flat = x.ravel()
    powers = np.empty((POLYVAL_BLOCK, flat.size))
    powers[0] = 1.0
    for j in range(1, POLYVAL_BLOCK):
        np.multiply(powers[j - 1], flat, out=powers[j])
    partial = np.einsum("rb,bn->rn", blocks, powers)
    y = powers[-1] * flat
    out = partial[-1].copy()
    for r in range(rows - 2, -1, -1):
        out *= y
        out += partial[r]
    return out.reshape(x.shape)


def near_or_far(delta, near_one: float, near_coefficients, far) -> np.ndarray:
    """The polynomial ``near_coefficients`` in delta where |delta| < near_one (Taylor
    coefficients at xi = 1, no cancellation), ``far(delta)`` elsewhere."""
    delta = _as_float_array(delta)
    shape = delta.shape
    delta = delta.ravel()
    near = np.abs(delta) < near_one
    out = np.empty_like(delta)
    out[near] = polyval(delta[near], near_coefficients)
    out[~near] = far(delta[~near])
    return out.reshape(shape)


@dataclass(frozen=True)
class LeadingTerm:
    """``f(s) ~ coefficient * s**power`` as ``s -> 0``."""

    power: int
    coefficient: float


class Dual:
    """Interface shared by every dual activation (see module docstring)."""

    #: +1 for an even dual, -1 for an odd dual, 0 for neither.
    parity: int = 0

    def value(self, xi: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, xi: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def complement(self, delta: np.ndarray) -> np.ndarray:
        """``1 - dual(1 - delta)``; the default is exact only for delta not tiny."""
        return 1.0 - self.value(1.0 - np.asarray(delta, dtype=float))

    def value_near_minus_one(self, eps: np.ndarray) -> np.ndarray:
        """``dual(-1 + eps)``; overridden where the closed form cancels near -1."""
        return self.value(np.asarray(eps, dtype=float) - 1.0)

    def derivative_near_minus_one(self, eps: np.ndarray) -> np.ndarray:
        """``dual'(-1 + eps)``; overridden where the closed form cancels near -1."""
        return self.derivative(np.asarray(eps, dtype=float) - 1.0)

    def derivative_complement(self, delta: np.ndarray) -> np.ndarray:
        """``dual'(1) - dual'(1 - delta)``."""
        return self.slope_at_one - self.derivative(1.0 - np.asarray(delta, dtype=float))

    def leading_term(self) -> LeadingTerm:
        raise NotImplementedError

    def derivative_leading_term(self) -> LeadingTerm:
        raise NotImplementedError

    @property
    def slope_at_one(self) -> float:
        """m = dual'(1)."""
        return float(self.derivative(np.array(1.0)))

    def slope_estimate(self) -> tuple[float, float]:
        """(best estimate of dual'(1), its uncertainty): exact, (m, 0), unless overridden.

        This is the number every regime decision uses (``find_attractor``, ``limit``).
        """
        return self.slope_at_one, 0.0

    @property
    def curvature_at_one(self) -> float:
        """dual''(1) (may be infinite for kinked activations)."""
        raise NotImplementedError

    def taylor_at_zero(self, terms: int) -> np.ndarray:
        """Coefficients of dual(s) = sum_{j < terms} a_j s^j (for the Schroder jump at 0)."""
        raise NotImplementedError(f"{type(self).__name__} has no Taylor series at 0")

    def complement_taylor(self, terms: int) -> np.ndarray:
        """Coefficients of 1 - dual(1 - delta) = sum_{j < terms} g_j delta^j (analytic at 1)."""
        raise NotImplementedError(f"{type(self).__name__} has no Taylor series at 1")

    def taylor_at(self, point: float, terms: int) -> np.ndarray:
        """Coefficients of dual(point + s) - point in s (at an interior fixed point)."""
        raise NotImplementedError(f"{type(self).__name__} has no Taylor series at {point}")

    def parabolic_expansion(self, terms: int) -> tuple[int, np.ndarray]:
        """(p, a): 1 - dual(1 - x^p) = sum_{j < terms} a_j x^j near x = 0.

        Needed only when 1 is a parabolic fixed point (dual'(1) = 1): the Fatou
        coordinate of :mod:`infdepth.parabolic` is built from it. p = 1 for duals
        analytic at 1, p = 2 for expansions in powers of (1 - xi)^(1/2).
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no expansion about xi = 1, so depths beyond the "
            "exact recursion cannot be reached at a parabolic fixed point"
        )


def _as_float_array(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _first(coefficients: np.ndarray, terms: int) -> np.ndarray:
    """The first ``terms`` coefficients, zero-padded."""
    out = np.zeros(terms)
    c = np.asarray(coefficients, dtype=float)[:terms]
    out[: c.size] = c
    return out


def slope_tail_estimate(coefficients) -> tuple[float, float]:
    """Estimate of sum_{k > K} k c_k for a series truncated at degree K, and its uncertainty.

    Uses the dyadic block sums B0 = sum_{K/2 < k <= K} k c_k, B1 (over (K/4, K/2]) and
    B2 (over (K/8, K/4]). For c_k ~ C k^-p (also when only every other c_k is non-zero,
    or the c_k oscillate, as for kinks away from 0) the blocks decrease geometrically
    with ratio r = 2^(2 - p), so the tail beyond K is B0 r / (1 - r). Returns
    ``(tail, uncertainty)`` with the uncertainty |tail(B0/B1) - tail(B1/B2)| +
    0.01 tail; ``(inf, inf)`` when r >= 1 (p <= 2: the tail, hence m, is infinite).
    Series shorter than 16 terms are taken as exact: ``(0.0, 0.0)``; a series whose last
    non-zero term k c_k is below 1e-15 of the total decayed to the coefficients' resolution before
    it was cut: ``(0.0, 10 K c_K)``. When the ratio of the two lower blocks is >= 1 (the
    coefficients are not yet decaying like a power law) the uncertainty is the tail itself.
    """
    c = np.asarray(coefficients, dtype=float)
    K = c.size - 1
    if K < 16:
        return 0.0, 0.0
    kc = np.arange(c.size) * c
    last = kc[np.flatnonzero(kc)[-1]] if np.any(kc) else 0.0
    if last < 1e-15 * kc.sum():
        # the series decayed to the resolution of the coefficients (1e-20) before it was
        # cut: what is left is of the order of the last terms
        return 0.0, float(10 * last)
    b0 = kc[K // 2 + 1:].sum()
    b1 = kc[K // 4 + 1: K // 2 + 1].sum()
    b2 = kc[K // 8 + 1: K // 4 + 1].sum()
    if b0 <= 0:
        return 0.0, 0.0
    if b1 <= 0:
        return math.inf, math.inf
    r = b0 / b1
    if r >= 1:
        return math.inf, math.inf
    tail = b0 * r / (1 - r)
    r2 = b1 / b2 if b2 > 0 else r
    if r2 >= 1:  # the blocks are not yet in a power-law regime: trust the tail to 100%
        return float(tail), float(tail)
    tail2 = b0 * r2 / (1 - r2)
    return float(tail), float(abs(tail - tail2) + 0.01 * tail)



class SeriesDual(Dual):
    """The general mechanism: ``dual(xi) = sum_k c_k xi^k``, c_k >= 0, normalized.

    ``truncated=True`` marks the first terms of an infinite series (a Hermite series
    computed from a callable): :meth:`slope_estimate` then adds the estimated tail of
    sum_k k c_k (:func:`slope_tail_estimate`), so that a kinked activation, whose
    truncated m is below 1, is still recognised as parabolic (m = 1).

    Near xi = 1 it evaluates the re-expanded polynomial
    ``1 - dual(1 - delta) = sum_j g_j delta^j`` with
    ``g_j = (-1)^(j+1) sum_k C(k, j) c_k`` (each g_j a sum of same-signed terms,
    hence accurate), which has no cancellation for small delta.
    """

    def __init__(self, coefficients, truncated: bool = False) -> None:
        self.truncated = truncated
        c = np.array(coefficients, dtype=float).ravel()
        if c.size == 0 or not np.all(np.isfinite(c)):
            raise ValueError("dual coefficients must be a non-empty array of finite numbers")
        if np.any(c < 0):
            raise ValueError("dual coefficients must be non-negative (a dual is sum_k a_k^2 xi^k)")
        total = c.sum()
        if total <= 0:
            raise ValueError("dual coefficients sum to zero: E[phi^2] = 0 cannot be normalized")
        c = c / total
        c[c < COEFFICIENT_TOLERANCE] = 0.0
        nonzero = np.flatnonzero(c)
        c = c[: nonzero[-1] + 1]
        self.coefficients = c / c.sum()
        k = np.arange(c.size, dtype=float)
        self._derivative_coefficients = (k * self.coefficients)[1:]
        even, odd = self.coefficients[0::2].sum(), self.coefficients[1::2].sum()
        self.parity = 1 if odd == 0 else (-1 if even == 0 else 0)
        # Re-expansion about xi = 1 (see class docstring); binomials are exact in float
        # up to degree ~1000, far beyond what a truncated Hermite series needs.
        j = np.arange(c.size)
        binom = comb(j[None, :], j[:, None])  # binom[j, k] = C(k, j)
        moments = binom @ self.coefficients  # dual^(j)(1) / j!
        self._complement_coefficients = -((-1.0) ** j) * moments
        self._complement_coefficients[0] = 0.0
        d_moments = (binom[1:, :] @ self.coefficients) * np.arange(1, c.size)  # dual'^(j)(1)/j!
        self._derivative_complement_coefficients = -((-1.0) ** j[: c.size - 1]) * d_moments
        if c.size > 1:
            self._derivative_complement_coefficients[0] = 0.0
        # Below this delta the re-expansion is used (terms bounded by e^{K delta}).
        self._near_one = min(0.05, 1.0 / max(c.size, 1))

    @property
    def degree(self) -> int:
        return self.coefficients.size - 1

    def value(self, xi):
        return polyval(_as_float_array(xi), self.coefficients)

    def derivative(self, xi):
        if self._derivative_coefficients.size == 0:
            return np.zeros_like(_as_float_array(xi))
        return polyval(_as_float_array(xi), self._derivative_coefficients)

    def _near_or_far(self, delta, near_coefficients, far):
        return near_or_far(delta, self._near_one, near_coefficients, far)

    def complement(self, delta):
        return self._near_or_far(
            delta, self._complement_coefficients, lambda d: 1.0 - self.value(1.0 - d)
        )

    def derivative_complement(self, delta):
        if self._derivative_complement_coefficients.size == 0:
            return np.zeros_like(_as_float_array(delta))
        return self._near_or_far(
            delta,
            self._derivative_complement_coefficients,
            lambda d: self.slope_at_one - self.derivative(1.0 - d),
        )

    def leading_term(self) -> LeadingTerm:
        p = int(np.flatnonzero(self.coefficients)[0])
        return LeadingTerm(p, float(self.coefficients[p]))

    def derivative_leading_term(self) -> LeadingTerm:
        nz = np.flatnonzero(self._derivative_coefficients)
        if nz.size == 0:
            return LeadingTerm(0, 0.0)
        q = int(nz[0])
        return LeadingTerm(q, float(self._derivative_coefficients[q]))

    @property
    def slope_at_one(self) -> float:
        return float(self._derivative_coefficients.sum())

    def slope_estimate(self) -> tuple[float, float]:
        m = self.slope_at_one
        if not self.truncated:
            return m, 0.0
        tail, uncertainty = slope_tail_estimate(self.coefficients)
        return m + tail, uncertainty

    @property
    def curvature_at_one(self) -> float:
        k = np.arange(self.coefficients.size)
        return float((k * (k - 1) * self.coefficients).sum())

    def taylor_at_zero(self, terms: int) -> np.ndarray:
        return _first(self.coefficients, terms)

    def taylor_at(self, point: float, terms: int) -> np.ndarray:
        """dual(point + s) - point = sum_j s^j sum_k C(k, j) c_k point^(k - j)."""
        k = np.arange(self.coefficients.size)
        out = np.zeros(terms)
        for j in range(min(terms, k.size)):
            out[j] = np.sum(comb(k[j:], j) * self.coefficients[j:] * point ** (k[j:] - j))
        out[0] -= point
        return out

    def complement_taylor(self, terms: int) -> np.ndarray:
        return _first(self._complement_coefficients, terms)

    def parabolic_expansion(self, terms: int) -> tuple[int, np.ndarray]:
        """p = 1: the re-expansion coefficients g_j of 1 - dual(1 - delta) (exact).

        A truncated kinked series is parabolic only through its tail: its expansion is
        that of its :class:`~infdepth.kink.KinkedSeriesDual` model (p = 2).
        """
        if abs(self.slope_at_one - 1) > 1e-12 and self.truncated:
            from .kink import parabolic_model

            model = parabolic_model(self)
            if model is not self:
                return model.parabolic_expansion(terms)
        if abs(self.slope_at_one - 1) > 1e-12:
            raise NotImplementedError(
                f"this dual's Hermite series stops at degree {self.degree} with "
                f"sum_k k c_k = {self.slope_at_one:.6g}: it is parabolic (m = 1) only "
                "through its tail, the (1 - xi)^(3/2) term of a kink, which the truncated "
                "series cannot resolve. Use a closed-form activation (relu, leaky_relu, "
                "abs) or Activation.from_dual_coefficients"
            )
        return 1, _first(self._complement_coefficients, terms)


def _sin_minus_theta_cos(theta: np.ndarray) -> np.ndarray:
    """sin(t) - t cos(t) without cancellation: sum_n (-1)^(n+1) 2n t^(2n+1) / (2n+1)!."""
    theta = _as_float_array(theta)
    shape = theta.shape
    theta = theta.ravel()
    out = np.sin(theta) - theta * np.cos(theta)
    small = np.abs(theta) < 0.5
    t = theta[small]
    series = np.zeros_like(t)
    for n in range(12, 0, -1):
        series = series + (-1) ** (n + 1) * 2 * n * t ** (2 * n + 1) / math.factorial(2 * n + 1)
    out[small] = series
    return out.reshape(shape)


class ReluFamilyDual(Dual):
    """Dual of phi(x) proportional to ``alpha x + beta |x|`` (ReLU, leaky ReLU, abs).

    With J(xi) = (2/pi)(sqrt(1 - xi^2) + xi arcsin xi), the normalized dual is
    ``(alpha^2 xi + beta^2 J(xi)) / (alpha^2 + beta^2)``; dual'(1) = 1 for every member.
    Near xi = 1 write xi = cos(theta):
    1 - J(cos theta) = delta - (2/pi)(sin theta - theta cos theta).
    """

    def __init__(self, alpha: float, beta: float) -> None:
        norm = alpha**2 + beta**2
        if norm <= 0:
            raise ValueError("alpha and beta cannot both be zero")
        self.linear = alpha**2 / norm
        self.kinked = beta**2 / norm
        self.parity = 1 if self.linear == 0 else (-1 if self.kinked == 0 else 0)

    def value(self, xi):
        xi = np.clip(_as_float_array(xi), -1.0, 1.0)
        j = (2 / np.pi) * (np.sqrt(1 - xi * xi) + xi * np.arcsin(xi))
        out = self.linear * xi + self.kinked * j
        near = xi < -0.5  # 1 + xi is exact there (Sterbenz), avoid the cancellation
        if np.any(near):
            out = np.where(near, self.value_near_minus_one(1.0 + np.where(near, xi, 0.0)), out)
        return out

    def derivative(self, xi):
        xi = np.clip(_as_float_array(xi), -1.0, 1.0)
        out = self.linear + self.kinked * (2 / np.pi) * np.arcsin(xi)
        near = xi < -0.5
        if np.any(near):
            eps = 1.0 + np.where(near, xi, 0.0)
            out = np.where(near, self.derivative_near_minus_one(eps), out)
        return out

    def derivative_near_minus_one(self, eps):
        """With -xi = cos(phi): dual'(xi) = linear - kinked + kinked (2/pi) phi."""
        return self.linear - self.kinked + self.kinked * (2 / np.pi) * self._theta(eps)

    def value_near_minus_one(self, eps):
        """With -xi = cos(phi): J(xi) = cos(phi) + (2/pi)(sin(phi) - phi cos(phi))."""
        phi = self._theta(eps)
        return (self.kinked - self.linear) * np.cos(phi) + self.kinked * (2 / np.pi) * (
            _sin_minus_theta_cos(phi)
        )

    @staticmethod
    def _theta(delta):
        return 2 * np.arcsin(np.sqrt(np.clip(_as_float_array(delta), 0.0, 2.0) / 2))

    def complement(self, delta):
        delta = _as_float_array(delta)
        return delta - self.kinked * (2 / np.pi) * _sin_minus_theta_cos(self._theta(delta))

    def derivative_complement(self, delta):
        return self.kinked * (2 / np.pi) * self._theta(delta)

    def leading_term(self) -> LeadingTerm:
        return LeadingTerm(0, self.kinked * 2 / np.pi)

    def derivative_leading_term(self) -> LeadingTerm:
        if self.linear > 0:
            return LeadingTerm(0, self.linear)
        return LeadingTerm(1, self.kinked * 2 / np.pi)

    @property
    def slope_at_one(self) -> float:
        return 1.0

    @property
    def curvature_at_one(self) -> float:
        return math.inf if self.kinked > 0 else 0.0

    def parabolic_expansion(self, terms: int) -> tuple[int, np.ndarray]:
        """p = 2: 1 - dual(1 - x^2) = x^2 - kinked (2/pi) (sin t - t cos t) in powers of x.

        With t = arccos(1 - x^2) = 2 arcsin(x / sqrt 2) = sum_n C(2n, n) 2 (x/sqrt 2)^(2n+1)
        / (4^n (2n + 1)) and sin t - t cos t = sum_n (-1)^(n+1) 2n t^(2n+1) / (2n + 1)!.
        """
        theta = np.zeros(terms)
        for n in range(terms // 2 + 1):
            if 2 * n + 1 < terms:
                theta[2 * n + 1] = (2 * math.comb(2 * n, n) / (4**n * (2 * n + 1))
                                    * 2.0 ** (-(2 * n + 1) / 2))
        kink = np.zeros(terms)
        power = theta.copy()  # theta^j, truncated
        for j in range(2, terms):
            power = np.convolve(power, theta)[:terms]
            if j % 2 and j >= 3:
                n = (j - 1) // 2
                kink += (-1) ** (n + 1) * 2 * n / math.factorial(j) * power
        a = -self.kinked * (2 / np.pi) * kink
        if terms > 2:
            a[2] += 1.0
        return 2, a


class ArcsinDual(Dual):
    """``arcsin(b xi) / arcsin(b)``, 0 < b < 1: the dual of erf(s x) with b = 2s^2/(1+2s^2).

    Near 1, with b' = b (1 - delta), without cancellation:
    arcsin(b) - arcsin(b') = arcsin(b^2 delta (2-delta) / (b sqrt(1-b'^2) + b' sqrt(1-b^2))).
    """

    parity = -1

    def __init__(self, b: float) -> None:
        if not 0 < b < 1:
            raise ValueError("ArcsinDual needs 0 < b < 1")
        self.b = float(b)
        self.scale = math.asin(self.b)

    def value(self, xi):
        return np.arcsin(self.b * np.clip(_as_float_array(xi), -1, 1)) / self.scale

    def derivative(self, xi):
        xi = np.clip(_as_float_array(xi), -1, 1)
        return self.b / np.sqrt(1 - (self.b * xi) ** 2) / self.scale

    def complement(self, delta):
        delta = _as_float_array(delta)
        b, bp = self.b, self.b * (1 - delta)
        near = delta <= 1
        with np.errstate(invalid="ignore", divide="ignore"):
            num = b * b * delta * (2 - delta)
            den = b * np.sqrt(1 - bp * bp) + bp * math.sqrt(1 - b * b)
            near_value = np.arcsin(num / den) / self.scale
        return np.where(near, near_value, 1 - self.value(1 - delta))

    def derivative_complement(self, delta):
        delta = _as_float_array(delta)
        b = self.b
        p = 1 - b * b
        gap = b * b * delta * (2 - delta)  # q - p, exactly (not by subtraction)
        q = p + gap
        return (b / self.scale) * gap / (np.sqrt(p) * np.sqrt(q) * (np.sqrt(p) + np.sqrt(q)))

    def leading_term(self) -> LeadingTerm:
        return LeadingTerm(1, self.b / self.scale)

    def derivative_leading_term(self) -> LeadingTerm:
        return LeadingTerm(0, self.b / self.scale)

    @property
    def slope_at_one(self) -> float:
        return self.b / math.sqrt(1 - self.b**2) / self.scale

    @property
    def curvature_at_one(self) -> float:
        b = self.b
        return b**3 / (1 - b * b) ** 1.5 / self.scale

    def taylor_at_zero(self, terms: int) -> np.ndarray:
        """arcsin(b s) = sum_n C(2n, n) (b s)^(2n+1) / (4^n (2n + 1))."""
        out = np.zeros(terms)
        for n in range((terms + 1) // 2):
            if 2 * n + 1 < terms:
                out[2 * n + 1] = math.comb(2 * n, n) * self.b ** (2 * n + 1) / (
                    4**n * (2 * n + 1) * self.scale)
        return out

    def complement_taylor(self, terms: int) -> np.ndarray:
        """1 - dual(1 - delta) = (b / scale) int_0^delta (1 - b^2 (1 - t)^2)^(-1/2) dt.

        With p = 1 - b^2: 1 - b^2 (1 - t)^2 = p (1 + (2 b^2 t - b^2 t^2) / p).
        """
        from .series import series_exp, series_log1p

        b, p = self.b, 1 - self.b**2
        inner = np.zeros(terms)
        inner[1], inner[2] = 2 * b * b / p, -b * b / p
        integrand = series_exp(-0.5 * series_log1p(inner, terms), terms) / math.sqrt(p)
        out = np.zeros(terms)
        out[1:] = integrand[: terms - 1] / np.arange(1, terms) * b / self.scale
        return out


class SinhDual(Dual):
    """``sinh(a xi) / sinh(a)``: the dual of sin(sqrt(a) x) (the paper's sine family).

    Near 1: 1 - sinh(a(1-delta))/sinh(a) = 2 cosh(a(1 - delta/2)) sinh(a delta/2) / sinh(a).
    """

    parity = -1

    def __init__(self, a: float) -> None:
        if not 0 < a <= 300:
            raise ValueError("the sine family needs 0 < a <= 300 (sinh(a) must stay finite)")
        self.a = float(a)
        self.scale = math.sinh(self.a)

    def value(self, xi):
        return np.sinh(self.a * _as_float_array(xi)) / self.scale

    def derivative(self, xi):
        return self.a * np.cosh(self.a * _as_float_array(xi)) / self.scale

    def complement(self, delta):
        d = _as_float_array(delta)
        a = self.a
        return 2 * np.cosh(a * (1 - d / 2)) * np.sinh(a * d / 2) / self.scale

    def derivative_complement(self, delta):
        d = _as_float_array(delta)
        a = self.a
        return 2 * a * np.sinh(a * (1 - d / 2)) * np.sinh(a * d / 2) / self.scale

    def leading_term(self) -> LeadingTerm:
        return LeadingTerm(1, self.a / self.scale)

    def derivative_leading_term(self) -> LeadingTerm:
        return LeadingTerm(0, self.a / self.scale)

    @property
    def slope_at_one(self) -> float:
        return self.a / math.tanh(self.a)

    @property
    def curvature_at_one(self) -> float:
        return self.a**2

    def taylor_at_zero(self, terms: int) -> np.ndarray:
        k = np.arange(terms)
        log_terms = k * math.log(self.a) - np.array([math.lgamma(j + 1) for j in k])
        return np.where(k % 2 == 1, np.exp(log_terms) / self.scale, 0.0)

    def complement_taylor(self, terms: int) -> np.ndarray:
        """1 - cosh(a delta) + coth(a) sinh(a delta)."""
        k = np.arange(terms)
        power = np.exp(k * math.log(self.a) - np.array([math.lgamma(j + 1) for j in k]))
        out = np.where(k % 2 == 1, power / math.tanh(self.a), -power)
        out[0] = 0.0
        return out
