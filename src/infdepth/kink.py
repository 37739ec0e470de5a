"""A parabolic model for the truncated Hermite series of a kinked activation (theory.md 7.2).

``Activation.from_callable(relu)`` gives a dual ``P_K(xi) = sum_{k <= K} c_k xi^k``
(K = 512, normalized to P_K(1) = 1) whose slope ``P_K'(1) = 0.9888`` is below 1: the
kink's coefficients decay like k^(-5/2), and the missing ``sum_{k > K} k c_k`` is what
makes the true dual parabolic (dual'(1) = 1, the (1 - xi)^(3/2) term). Iterating P_K
itself would converge geometrically, at rate 0.9888, to the wrong fixed-point regime.

The model restores the tail with the shape of the kink function
``J(xi) = (2 / pi) (sqrt(1 - xi^2) + xi arcsin xi)`` (the dual of |x|, coefficients
j_k ~ k^(-5/2)):

    D(xi) = [P_K(xi) + beta (J(xi) - J_K(xi))] / N,   N = 1 + beta T_0,

with J_K the degree-K Taylor polynomial of J, T_0 = sum_{k > K} j_k and
T_1 = sum_{k > K} k j_k. D(1) = 1 by N, and beta is fixed by D'(1) = 1:

    beta = (1 - P_K'(1)) / (T_1 - T_0).

For every positively homogeneous activation alpha x + beta' |x| (the only kinked
activations with dual'(1) = 1) the true dual is exactly linear xi + kinked J(xi), so
the model is exact up to the quadrature error of the c_k; for other kinks it keeps the
computed coefficients and replaces only the unresolved tail, whose k^(-5/2) law fixes
the (1 - xi)^(3/2) amplitude to leading order in 1 / K.

Writing Q = P_K - beta J_K (coefficients q_k = c_k - beta j_k, tiny for the ReLU family)
the model is D = (Q + beta J) / N: Q is evaluated as a polynomial (re-expanded about 1
for 1 - xi < 1 / K), J in closed form (:class:`~infdepth.duals.ReluFamilyDual`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import comb, gammaln

from .duals import Dual, LeadingTerm, ReluFamilyDual, SeriesDual, near_or_far

__all__ = ["KinkedSeriesDual", "kink_coefficients", "parabolic_model"]

#: Coefficients of Q = P_K - beta J_K are dropped from the top while their total weight
#: sum k |q_k| stays below this (the rounding level of the Hermite quadrature).
Q_TOLERANCE = 1e-14

#: The kink function J = dual of |x| (normalized: J(1) = 1, J'(1) = 1).
_KINK = ReluFamilyDual(0.0, 1.0)


def kink_coefficients(degree: int) -> np.ndarray:
    """Taylor coefficients j_0..j_degree of J(xi) = (2/pi)(sqrt(1 - xi^2) + xi arcsin xi).

    J'' = (2/pi) (1 - xi^2)^(-1/2) = (2/pi) sum_n u_n xi^(2n), u_n = C(2n, n) / 4^n, so
    j_0 = 2/pi, j_{2n+2} = (2/pi) u_n / ((2n + 1)(2n + 2)) and the odd j_k vanish.
    """
    j = np.zeros(degree + 1)
    j[0] = 2 / math.pi
    n = np.arange(0, max(degree // 2, 0))
    u = np.exp(gammaln(2 * n + 1) - 2 * gammaln(n + 1) - n * math.log(4.0))
    even = 2 * n + 2
    keep = even <= degree
    j[even[keep]] = (2 / math.pi) * u[keep] / ((2 * n[keep] + 1) * (2 * n[keep] + 2))
    return j


def _kink_tails(degree: int) -> tuple[float, float]:
    """(T_0, T_1) = (sum_{k > K} j_k, sum_{k > K} k j_k), K = degree.

    J(1) = J'(1) = 1, so T_0 = 1 - J_K(1) and T_1 = 1 - J_K'(1), summed from the exact
    j_k smallest first; the subtraction loses at most ~1e-16 absolutely (T_0 = 1.5e-5,
    T_1 = 0.022 at K = 512: beta is then relatively accurate to ~1e-11).
    """
    j = kink_coefficients(degree)
    k = np.arange(degree + 1)
    # sums ordered small to large for the last digit
    return float(1.0 - np.sum(j[::-1])), float(1.0 - np.sum((k * j)[::-1]))


class KinkedSeriesDual(Dual):
    """D = (Q + beta J) / N: a truncated kinked Hermite series with its k^(-5/2) tail.

    dual(1) = 1 and dual'(1) = 1 hold by construction; near 1 the expansion is a
    series in x = (1 - xi)^(1/2) (:meth:`parabolic_expansion`, p = 2), so the Fatou
    jumps of :mod:`infdepth.parabolic` apply.
    """

    def __init__(self, series: SeriesDual) -> None:
        c = series.coefficients
        K = c.size - 1
        j = kink_coefficients(K)
        T0, T1 = _kink_tails(K)
        m = float(np.sum(np.arange(K + 1) * c))
        beta = (1.0 - m) / (T1 - T0)
        if not (beta > 0 and math.isfinite(beta)) or c[0::2].sum() == 0:
            raise ValueError("no kink tail to model: the series is not missing slope mass")
        self.series, self.beta = series, beta
        self.norm = 1.0 + beta * T0
        q = c - beta * j
        # Drop the q_k whose total weight on [-1, 1], sum_{k > k0} k |q_k|, is below the
        # quadrature's own rounding (the computed c_k carry ~1e-14 absolute errors):
        # for the ReLU family the tail then matches the computed c_k to that level.
        weight = np.cumsum((np.arange(K + 1) * np.abs(q))[::-1])[::-1]
        keep = int(np.argmax(np.append(weight, 0.0) <= Q_TOLERANCE))
        self.dropped = float(weight[keep]) if keep <= K else 0.0
        q = np.append(q[: max(keep, 3)], np.zeros(max(0, 3 - q.size)))
        # restore D'(1) = D(1) = 1 exactly after the drop: Q'(1) = Q(1) through q_2
        # (a change at the dropped weight's level; q_0 and q_1 keep dual(0), dual'(0))
        k = np.arange(q.size)
        q[2] -= float(np.sum(k * q) - np.sum(q))
        self.q = q
        self.norm = float(np.sum(q)) + beta
        K = self.q.size - 1
        k = np.arange(K + 1)
        self.dq = (k * self.q)[1:]
        self.parity = 1 if c[1::2].sum() == 0 else 0
        # re-expansion about 1: Q(1) - Q(1 - d) = sum_j gq_j d^j, likewise for Q'
        binom = comb(k[None, :], k[:, None])  # C(k, j)
        sign = -((-1.0) ** k)
        self._gq = sign * (binom @ self.q)
        self._gq[0] = 0.0
        self._gdq = sign[:K] * (binom[:K, :K] @ self.dq) if K else np.zeros(0)
        if K:
            self._gdq[0] = 0.0
        self._near_one = min(0.05, 1.0 / max(K, 1))
        self.tail_coefficient_ratio = self._tail_ratio(c, j)

    @staticmethod
    def _tail_ratio(c: np.ndarray, j: np.ndarray) -> float:
        """beta estimated from the top block instead: sum c_k / sum j_k over (K/2, K]."""
        K = c.size - 1
        top = slice(K // 2 + 1, K + 1)
        return float(c[top].sum() / j[top].sum()) if j[top].sum() > 0 else math.nan

    # ------------------------------------------------------------------ pieces
    def _q_near(self, delta: np.ndarray, near_coefficients, far) -> np.ndarray:
        return near_or_far(delta, self._near_one, near_coefficients, far)

    def value(self, xi):
        xi = np.asarray(xi, dtype=float)
        return (np.polynomial.polynomial.polyval(xi, self.q)
                + self.beta * _KINK.value(xi)) / self.norm

    def derivative(self, xi):
        xi = np.asarray(xi, dtype=float)
        return (np.polynomial.polynomial.polyval(xi, self.dq)
                + self.beta * _KINK.derivative(xi)) / self.norm

    def value_near_minus_one(self, eps):
        eps = np.asarray(eps, dtype=float)
        return (np.polynomial.polynomial.polyval(eps - 1.0, self.q)
                + self.beta * _KINK.value_near_minus_one(eps)) / self.norm

    def derivative_near_minus_one(self, eps):
        eps = np.asarray(eps, dtype=float)
        return (np.polynomial.polynomial.polyval(eps - 1.0, self.dq)
                + self.beta * _KINK.derivative_near_minus_one(eps)) / self.norm

    def complement(self, delta):
        """[Q(1) - Q(1 - delta) + beta (1 - J(1 - delta))] / N."""
        q1 = float(np.sum(self.q))
        dq = self._q_near(delta, self._gq,
                          lambda d: q1 - np.polynomial.polynomial.polyval(1.0 - d, self.q))
        return (dq + self.beta * _KINK.complement(delta)) / self.norm

    def derivative_complement(self, delta):
        """[Q'(1) - Q'(1 - delta) + beta (1 - J'(1 - delta))] / N  (= 1 - D'(1 - delta))."""
        dq1 = float(np.sum(self.dq))
        dq = self._q_near(delta, self._gdq,
                          lambda d: dq1 - np.polynomial.polynomial.polyval(1.0 - d, self.dq))
        return (dq + self.beta * _KINK.derivative_complement(delta)) / self.norm

    def leading_term(self) -> LeadingTerm:
        lead = self.series.leading_term()
        return LeadingTerm(lead.power, lead.coefficient / self.norm)

    def derivative_leading_term(self) -> LeadingTerm:
        lead = self.series.derivative_leading_term()
        return LeadingTerm(lead.power, lead.coefficient / self.norm)

    @property
    def slope_at_one(self) -> float:
        return 1.0

    @property
    def curvature_at_one(self) -> float:
        return math.inf

    def parabolic_expansion(self, terms: int) -> tuple[int, np.ndarray]:
        """p = 2: 1 - D(1 - x^2) = [sum_j gq_j x^(2j) + beta (1 - J(1 - x^2))] / N."""
        _, a = _KINK.parabolic_expansion(terms)
        a = self.beta * a
        for i in range(1, min((terms + 1) // 2, self._gq.size)):
            if 2 * i < terms:
                a[2 * i] += self._gq[i]
        return 2, a / self.norm


def parabolic_model(dual: Dual) -> Dual:
    """The dual the engine iterates: a truncated kinked Hermite series that the regime
    decision calls parabolic becomes its :class:`KinkedSeriesDual` (cached); every other
    dual is returned unchanged."""
    if not (isinstance(dual, SeriesDual) and dual.truncated):
        return dual
    cached = dual.__dict__.get("_parabolic_model", False)
    if cached is not False:
        return cached or dual
    from .dynamics import find_attractor

    model = None
    if (abs(dual.slope_at_one - 1) > 1e-12
            and find_attractor(dual, tail=True).kind == "parabolic"):
        try:
            model = KinkedSeriesDual(dual)
        except ValueError:
            model = None
    dual.__dict__["_parabolic_model"] = model
    return model or dual
