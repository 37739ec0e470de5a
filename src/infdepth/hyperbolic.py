"""Depth jumps at a hyperbolic fixed point: the Schroder coordinate (docs/theory.md, 7.1).

Near a fixed point with multiplier lam (0 < |lam| != 1) the depth map, in the local
coordinate s (s = S at the attracting point 0 of the singular class, s = delta = 1 - S at
the fixed point 1), is F(s) = lam s + a_2 s^2 + ... and has a Schroder (Koenigs)
coordinate psi(s) = s + psi_2 s^2 + ... with psi(F(s)) = lam psi(s): the coefficient of
s^k gives psi_k (lam^k - lam) = -sum_{j<k} psi_j [F^j]_k, a triangular recursion. Then
r layers are s_r = s(lam^r psi(s_0)) (s = psi^-1), and the NTK sums along the orbit are
geometric series in u_i = lam^i U, U = psi(s_0), through the power series

    Q(u) = psi'(s(u)),   G(u) = s(u) psi'(s(u))

(see :func:`jump_at_zero` and :func:`jump_at_one`). The truncated series is used where
its neglected terms are below 1e-17 relative (:attr:`SchroderCoordinate.radius`), which
is far larger than the region where F is linear to rounding: fewer exact layers before
the jump, whatever the depth.
"""

from __future__ import annotations

import math

import numpy as np

from .duals import polyval
from .series import pad, series_compose, series_mul, series_reverse

__all__ = ["SchroderCoordinate", "schroder_coordinate"]

#: Terms kept in psi and its companions.
SCHRODER_TERMS = 24
#: At 0 (the singular class) and at an interior point the dual's Taylor series is exact
#: to any order (its own power series, re-expanded): 96 terms give radius 0.5 for erf and
#: tanh at 0 (24 terms: 0.125) and 0.125 for SiLU at its interior point (0.031), about 20
#: fewer exact layers before the jump when the multiplier is 0.93.
SCHRODER_TERMS_LONG = 96
#: Neglected terms (the last quarter kept, at least three) below this fraction of the
#: leading one.
SCHRODER_TOLERANCE = 1e-17


class SchroderCoordinate:
    """psi, its inverse s(u), Q(u) = psi'(s(u)) and G(u) = s(u) Q(u), for F = taylor."""

    def __init__(self, taylor: np.ndarray, terms: int = SCHRODER_TERMS) -> None:
        F = pad(taylor, terms)
        F[0] = 0.0
        lam = float(F[1])
        if not (lam != 0 and abs(lam) != 1 and math.isfinite(lam)):
            raise ValueError("a Schroder coordinate needs a multiplier 0 < |lam| != 1")
        self.multiplier = lam
        psi = np.zeros(terms)
        psi[1] = 1.0
        powers = [None, F]
        for _ in range(2, terms):
            powers.append(series_mul(powers[-1], F, terms))
        for k in range(2, terms):
            known = sum(psi[j] * powers[j][k] for j in range(1, k))
            psi[k] = -known / (lam**k - lam)
        self.psi = psi
        self.inverse = series_reverse(psi, terms)
        dpsi = np.arange(1, terms) * psi[1:]
        self.Q = series_compose(dpsi, self.inverse, terms - 1)
        self.G = series_mul(self.inverse, self.Q, terms - 1)
        self.dpsi = dpsi
        radius = 0.5
        while radius > 1e-12 and not all(_converged(c, radius) for c in
                                         (self.psi, self.inverse, self.Q, self.G)):
            radius /= 2
        self.radius = radius

    # ------------------------------------------------------------------ evaluation
    def __call__(self, s: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(s, self.psi)

    def derivative(self, s: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(s, self.dpsi)

    def inverse_ratio(self, u: np.ndarray) -> np.ndarray:
        """s(u) / u (1 at u = 0: no underflow for tiny u)."""
        return np.polynomial.polynomial.polyval(u, self.inverse[1:])

    def Q_minus_one(self, u: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(u, np.concatenate([[0.0], self.Q[1:]]))

    # --------------------------------------------------------------- orbit sums
    def geometric(self, j: int, r):
        """sum_{i=1}^r lam^(i j) = lam^j (1 - lam^(j r)) / (1 - lam^j) (lam^(j r) <= 1)."""
        lam_j = self.multiplier**j
        return lam_j * (-np.expm1(j * r * math.log(self.multiplier))) / (1 - lam_j)

    def power_gap(self, k: int, U, u, r):
        """u^k - U^k = U^k (lam^(k r) - 1) for u = lam^r U, without overflow or cancellation."""
        x = k * r * math.log(self.multiplier)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            return np.where(x < 30, U**k * np.expm1(np.minimum(x, 30)), u**k - U**k)

    def power_sum(self, k: int, U, u, r):
        """U^k sum_{i=1}^r lam^(i (k-1)) (k >= 2), from U and u = lam^r U."""
        lam_j = self.multiplier ** (k - 1)
        return lam_j / (lam_j - 1) * U * self.power_gap(k - 1, U, u, r)


def _converged(c: np.ndarray, radius: float) -> bool:
    """The last quarter of the terms (at least three) at the radius below
    SCHRODER_TOLERANCE of the leading ones (a long series can have small last terms and
    large middle ones beyond its radius of convergence)."""
    k = np.arange(c.size)
    size = np.abs(c) * radius**k
    tail = max(3, c.size // 4)
    return bool(np.max(size[-tail:]) <= SCHRODER_TOLERANCE * np.max(size[:2]))


def schroder_coordinate(dual, where: str, point: float = 0.0) -> SchroderCoordinate | None:
    """The cached Schroder coordinate of a dual at 0 (``"zero"``), at 1 (``"one"``, in
    delta = 1 - S) or at an interior fixed point (``"interior"``, s = S - point), or None
    when the dual offers no Taylor series there (the linear jump is used instead)."""
    key = f"_schroder_{where}"
    if key not in dual.__dict__:
        try:
            if where == "zero":
                taylor = dual.taylor_at_zero(SCHRODER_TERMS_LONG)
            elif where == "one":
                taylor = dual.complement_taylor(SCHRODER_TERMS)
            else:
                taylor = dual.taylor_at(point, SCHRODER_TERMS_LONG)
            coordinate = SchroderCoordinate(taylor, len(taylor))
        except (NotImplementedError, ValueError):
            coordinate = None
        dual.__dict__[key] = coordinate
    return dual.__dict__[key]


# ------------------------------------------------------------------ the jumps
def _log_ratio(series: np.ndarray, s: np.ndarray) -> np.ndarray:
    """log(c(s) / s) for a series with c(0) = 0, c'(0) = 1 (s may be tiny or 0)."""
    return np.log(np.polynomial.polynomial.polyval(s, series[1:]))


def log_coordinate(coordinate: SchroderCoordinate, sign, log_abs):
    """(sign, log|U|) of U = psi(s) for s = sign e^log_abs, without underflow."""
    with np.errstate(under="ignore"):
        s = sign * np.exp(log_abs)
    return sign, log_abs + _log_ratio(coordinate.psi, s)


def advance(coordinate: SchroderCoordinate, sign, log_U, r):
    """(sign, log|s_r|, u) with s_r = s(lam^r U): r more layers from U (lam > 0)."""
    log_u = log_U + r * math.log(coordinate.multiplier)
    with np.errstate(under="ignore"):
        u = sign * np.exp(log_u)
    return sign, log_u + np.log(coordinate.inverse_ratio(u)), u


def ntk_at_zero(c: SchroderCoordinate, K_sign, K_log, sign_U, log_U, u_end, r):
    """(sign, log|K_L|) unnormalized, from K_l = K_sign e^K_log and U = psi(S_l).

    K_L = lam^r [psi'(S_l) K_l + sum_{i=1}^r lam^-i G(lam^i U)] / psi'(S_L), with
    psi'(S_l) = Q(U) and psi'(S_L) = Q(u_end).
    """
    from .dynamics import signed_logaddexp

    with np.errstate(under="ignore"):
        U = sign_U * np.exp(log_U)
    # sum_{k>=2} G_k U^(k-1) sum_i lam^(i (k-1)): a polynomial in U, by Horner (not k
    # powers of U); its coefficients are scalars when every entry has the same r
    if np.ndim(r) == 0:
        coefs = np.array([c.G[k] * c.geometric(k - 1, r) for k in range(2, c.G.size)])
        poly = polyval(U, coefs) if coefs.size else np.zeros_like(U)
    else:
        poly = np.zeros_like(U)
        for k in range(c.G.size - 1, 1, -1):
            poly = poly * U + c.G[k] * c.geometric(k - 1, r)
    orbit = r + U * poly
    # (lam < 1 here: lam^(i (k-1)) <= 1, no overflow)
    with np.errstate(divide="ignore"):
        log_orbit = log_U + np.log(np.abs(orbit))
    s, a = signed_logaddexp(K_sign, K_log + np.log(1 + c.Q_minus_one(U)),
                            sign_U * np.sign(orbit), log_orbit)
    return s, a + r * math.log(c.multiplier) - np.log(1 + c.Q_minus_one(u_end))


def log_complement_at_one(c: SchroderCoordinate, E_l, D_l, U, u_end, r):
    """log E_L, E_L = D_L - K_L (unnormalized), from E_l, D_l and U = psi(delta_l).

    With Omega_i = lam^-i psi'(delta_i): K_L Omega_r = K_l Omega_0 + sum (1 - delta_i)
    Omega_i and D_L = lam^r D_l + sum_{i<r} lam^i give
    E_L Omega_r = E_l Omega_0 + sum_i delta_i Omega_i + D_l (q_r - q_0)
                  + sum_{i=1}^r lam^-i (q_r - q_i),  q = Q - 1,
    each a geometric series in lam^i U (all terms positive to leading order).
    """
    lam = c.multiplier
    log_lam = math.log(lam)
    tail_r = -np.expm1(r * log_lam) / (1 - lam)  # sum_{i<r} lam^i
    total = E_l * (1 + c.Q_minus_one(U)) + U * r  # sum delta_i Omega_i: G_1 = 1
    for k in range(2, c.G.size):
        total = total + c.G[k] * c.power_sum(k, U, u_end, r)
    # D_l (q_r - q_0) + sum_i lam^-i (q_r - q_i), with U^k lam^(r (k-1)) = U u^(k-1)
    total = total + c.Q[1] * (D_l * c.power_gap(1, U, u_end, r) + U * (tail_r - r))
    for k in range(2, c.Q.size):
        h = U * u_end ** (k - 1) * tail_r - c.power_sum(k, U, u_end, r)
        total = total + c.Q[k] * (D_l * c.power_gap(k, U, u_end, r) + h)
    return np.log(total) + r * log_lam - np.log(1 + c.Q_minus_one(u_end))


def ntk_at_interior(c: SchroderCoordinate, point: float, K_sign, K_log, U, u_end, r):
    """(sign, log|K_L|) unnormalized at an interior fixed point xi* = ``point``.

    K_L = [lam^r Q(U) K_l + sum_{i=1}^r lam^(r-i) (xi* Q(u_i) + G(u_i))] / Q(u_r), the
    sum geometric in u_i = lam^i U (its k = 0 term xi* (1 - lam^r) / (1 - lam)).
    """
    from .dynamics import signed_logaddexp

    lam = c.multiplier
    log_lam = math.log(lam)
    lam_r = np.exp(r * log_lam)
    orbit = point * (-np.expm1(r * log_lam)) / (1 - lam) + lam_r * r * U * (point * c.Q[1] + 1)
    for k in range(2, c.G.size):
        orbit = orbit + lam_r * (point * c.Q[k] + c.G[k]) * c.power_sum(k, U, u_end, r)
    with np.errstate(divide="ignore"):
        s, a = signed_logaddexp(K_sign, K_log + r * log_lam + np.log(1 + c.Q_minus_one(U)),
                                np.sign(orbit), np.log(np.abs(orbit)))
    return s, a - np.log(1 + c.Q_minus_one(u_end))
