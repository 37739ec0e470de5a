"""The depth recursion of docs/theory.md section 3, iterated in coordinates that keep digits.

For every inner product xi the NNGP and NTK of depth L are

    S_0 = xi,  S_{l+1} = dual(S_l)
    K_0 = xi,  K_{l+1} = dual(S_l) + K_l dual'(S_l),

normalized by their values at xi = 1 (1 and D_L = sum_{i<=L} m^i, m = dual'(1)).
:func:`iterate_depth` runs this recursion for an array of points with three
safeguards:

* near xi = 1 it iterates the complement delta_l = 1 - S_l with the accurate map
  g(delta) = 1 - dual(1 - delta) (and the NTK complement e_l = 1 - k_l likewise);
* values are carried as (sign, log|value|), so c^L decay and m^L growth neither
  underflow nor overflow at any depth;
* once a point is in the linear regime of the attracting fixed point (to 1e-15
  relative accuracy) the remaining depth is applied in closed form, so the cost is
  bounded independently of L for every hyperbolic fixed point (see
  :class:`Attractor`). Only a parabolic fixed point at 1 (dual'(1) = 1, e.g. ReLU)
  is iterated step by step.

Depth ``math.inf`` returns the infinite-depth limit profile: h(xi) = lim S_L / c0^L
(the Koenigs function, h(xi) ~ xi near 0) when 0 is the attracting point, and
psi(xi) = lim (1 - S_L) / m^L when 1 is attracting (m < 1), for both kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from .duals import Dual

#: Relative accuracy at which a point counts as being in the linear regime.
LINEAR_TOLERANCE = 1e-15
#: Safety cap on steps for depth = inf (or for a point that never linearizes).
MAX_STEPS = 2_000_000
#: Below this |S| the dual is replaced by its leading term c_p S^p.
TINY = 1e-250

TOLERANCE_PARABOLIC = 1e-12


@dataclass(frozen=True)
class Attractor:
    """Where iterates of the dual go from xi in (-1, 1).

    kind is ``"zero"`` (attracting fixed point 0 with 0 < c0 < 1: the singular class),
    ``"superattracting_zero"`` (dual(0) = dual'(0) = 0: nearest neighbour),
    ``"interior"`` (attracting xi* != 0, majority vote), ``"one"`` (m < 1: 1 attracts),
    ``"parabolic"`` (m = 1: 1 attracts at algebraic rate) or ``"identity"`` (dual = xi).
    """

    kind: str
    point: float
    multiplier: float
    linear_radius: float = 0.0


def find_attractor(dual: Dual) -> Attractor:
    """Classify the fixed points of the dual (docs/theory.md section 4).

    Decisions use exact information where the dual offers it (closed forms and
    polynomial duals know dual(0) and dual'(1) exactly); ``m`` is compared with 1 at
    a relative tolerance of 1e-12.
    """
    m = dual.slope_at_one
    lead = dual.leading_term()
    if lead.power == 1 and lead.coefficient >= 1 - 1e-15:
        return Attractor("identity", 1.0, 1.0)
    if abs(m - 1) <= TOLERANCE_PARABOLIC:
        return Attractor("parabolic", 1.0, 1.0)
    if m < 1:
        return Attractor("one", 1.0, m, _linear_radius_one(dual, m))
    if lead.power >= 1:  # dual(0) = 0 exactly
        c0 = float(dual.derivative(np.array(0.0)))
        if c0 == 0:
            return Attractor("superattracting_zero", 0.0, 0.0)
        return Attractor("zero", 0.0, c0, _linear_radius_zero(dual, c0))
    # dual(0) > 0 and m > 1: a unique fixed point in (0, 1) (dual is convex on [0, 1],
    # above the diagonal at 0 and below it just left of 1).
    def excess(t: float) -> float:
        return float(dual.value(np.array(t))) - t

    hi = 1.0 - 1e-3
    while excess(hi) >= 0:
        hi = 1.0 - (1.0 - hi) / 10
        if 1.0 - hi < 1e-15:
            raise ArithmeticError("could not bracket the attracting fixed point of the dual")
    point = brentq(excess, 0.0, hi, xtol=1e-300, rtol=1e-15, maxiter=500)
    lam = float(dual.derivative(np.array(point)))
    return Attractor("interior", point, lam)


def _linear_radius_zero(dual: Dual, c0: float) -> float:
    """Largest s = 10^-k with |dual(s)/(c0 s) - 1| and |dual'(s)/c0 - 1| below tolerance."""
    tol = LINEAR_TOLERANCE * (1 - c0)
    for k in range(1, 300):
        s = np.array([10.0**-k, -(10.0**-k)])
        ok = np.all(np.abs(dual.value(s) / (c0 * s) - 1) <= tol) and np.all(
            np.abs(dual.derivative(s) / c0 - 1) <= tol
        )
        if ok:
            return 10.0**-k
    return 1e-300


def _linear_radius_one(dual: Dual, m: float) -> float:
    """Largest delta = 10^-k where g(delta) = m delta and the NTK recursion are linear."""
    tol = LINEAR_TOLERANCE * (1 - m)
    beta = dual.curvature_at_one
    for k in range(1, 300):
        d = np.array(10.0**-k)
        ok = abs(float(dual.complement(d)) / (m * d) - 1) <= tol
        if beta > 0:
            ok = ok and abs(float(dual.derivative_complement(d)) / (beta * d) - 1) <= tol
        if ok and d * max(beta, 1.0) / m <= tol:
            return float(d)
    return 1e-300


# ----------------------------------------------------------------- signed log arithmetic
def signed_log(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sign(x), log|x|) with log 0 = -inf."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.sign(x), np.log(np.abs(x))


def complement_from_log(sign, logabs) -> np.ndarray:
    """1 - sign e^logabs, without cancellation where the value is close to 1."""
    return np.where(sign > 0, -np.expm1(np.minimum(logabs, 0.0)), 1.0 + np.exp(logabs))


def signed_logaddexp(s1, a1, s2, a2) -> tuple[np.ndarray, np.ndarray]:
    """(sign, log|.|) of s1 e^a1 + s2 e^a2."""
    s1 = np.where(np.isneginf(a1), 0.0, s1)
    s2 = np.where(np.isneginf(a2), 0.0, s2)
    swap = (a2 > a1) | (s1 == 0)
    hi_s, hi_a = np.where(swap, s2, s1), np.where(swap, a2, a1)
    lo_s, lo_a = np.where(swap, s1, s2), np.where(swap, a1, a2)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(lo_s == 0, 0.0, np.exp(lo_a - hi_a))
        same = hi_s * lo_s >= 0
        mag = hi_a + np.where(same, np.log1p(r), np.log1p(-r))
    sign = np.where(np.isneginf(mag), 0.0, hi_s)
    mag = np.where(sign == 0, -np.inf, mag)
    return sign, mag


# ----------------------------------------------------------------- one step of the dual
def _log_dual(dual: Dual, sign, logabs, derivative: bool):
    """(sign, log|.|) of dual(S) or dual'(S) for S = sign e^logabs, |S| <= 1/2 typically."""
    lead = dual.derivative_leading_term() if derivative else dual.leading_term()
    fn = dual.derivative if derivative else dual.value
    with np.errstate(over="ignore", under="ignore"):
        s = sign * np.exp(np.maximum(logabs, -745.0))
    out_s, out_a = signed_log(fn(s))
    tiny = (logabs < math.log(TINY)) | (
        (out_a < math.log(1e-290)) & (logabs < math.log(1e-20))
    )
    if np.any(tiny):
        p, c = lead.power, lead.coefficient
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            lead_a = (math.log(c) if c > 0 else -np.inf) + (p * logabs if p else 0.0)
        lead_s = sign**p if p else np.ones_like(sign)
        out_s = np.where(tiny, lead_s, out_s)
        out_a = np.where(tiny, lead_a, out_a)
        out_s = np.where(np.isneginf(out_a), 0.0, out_s)
    return out_s, out_a


@dataclass
class DepthResult:
    """Normalized kernel values as (sign, log|k|) and log(1 - k)."""

    sign: np.ndarray
    logabs: np.ndarray
    log_complement: np.ndarray


def iterate_depth(dual: Dual, xi, delta, eps, depth, kind: str = "nngp",
                  attractor: Attractor | None = None) -> DepthResult:
    """Normalized depth-``depth`` NNGP or NTK at the inner products xi.

    ``delta`` = 1 - xi and ``eps`` = 1 + xi must be accurate too (pass
    ||x - z||^2 / 2 and ||x + z||^2 / 2 for near and antipodal pairs).
    """
    if kind not in ("nngp", "ntk", "derivative"):
        raise ValueError(f"kind must be 'nngp' or 'ntk', not {kind!r}")
    xi = np.atleast_1d(np.asarray(xi, dtype=float))
    delta = np.atleast_1d(np.asarray(delta, dtype=float)).copy()
    eps = np.atleast_1d(np.asarray(eps, dtype=float))
    attractor = attractor or find_attractor(dual)
    infinite = math.isinf(depth)
    if infinite and attractor.kind not in ("zero", "one"):
        raise ValueError(f"no infinite-depth kernel for attractor {attractor.kind!r}")
    ntk = kind == "ntk"
    # "derivative": P_L = dS_L/dxi = prod_l dual'(S_l), used to compose NTK tables
    derivative = kind == "derivative"
    m = dual.slope_at_one
    log_m = math.log(m)
    n = delta.size

    # State: S as (sign, log|S|) and its complement delta; NTK k as (sign, log|k|), e = 1 - k.
    xi_sign = np.sign(xi)
    with np.errstate(divide="ignore"):
        xi_log = np.where(
            delta < 0.5,
            np.log1p(-np.minimum(delta, 0.5)),
            np.where(eps < 0.5, np.log1p(-np.minimum(eps, 0.5)), np.log(np.abs(xi))),
        )
    sS, aS, dS = xi_sign.copy(), xi_log.copy(), delta.copy()
    sK, aK, eK = xi_sign.copy(), xi_log.copy(), delta.copy()
    if derivative:
        sK, aK = np.ones(n), np.zeros(n)
    log_D = 0.0  # log D_l, D_0 = 1
    frozen_at = np.full(n, -1, dtype=np.int64)
    log_D_frozen = np.zeros(n)
    active = np.arange(n)
    l = 0
    limit = MAX_STEPS if infinite else int(depth)
    linear = attractor.kind in ("zero", "interior", "one")
    while l < limit and active.size:
        idx = active
        d = dS[idx]
        near = d < 0.5
        # ---- NNGP step
        g = dual.complement(np.where(near, d, 0.25))
        vs, va = _log_dual(dual, sS[idx], aS[idx], derivative=False)
        if l == 0 and np.any(eps < 0.5):  # xi near -1: use 1 + xi, which is known exactly
            antipodal = eps[idx] < 0.5
            rs, ra = signed_log(dual.value_near_minus_one(eps[idx][antipodal]))
            vs[antipodal], va[antipodal] = rs, ra
        with np.errstate(divide="ignore", invalid="ignore"):
            new_a = np.where(near, np.log1p(-np.minimum(g, 1.0)), va)
        new_s = np.where(near, 1.0, vs)
        new_d = np.where(near, g, 1.0 - new_s * np.exp(np.minimum(new_a, 0.0)))
        if ntk or derivative:
            log_D_next = float(np.logaddexp(0.0, log_m + log_D))
            log_w = -log_D_next
            log_1mw = log_m + log_D - log_D_next
            dc = dual.derivative_complement(np.where(near, d, 0.25))
            ps, pa = _log_dual(dual, sS[idx], aS[idx], derivative=True)
            if l == 0 and np.any(eps < 0.5):
                antipodal = eps[idx] < 0.5
                rs, ra = signed_log(dual.derivative_near_minus_one(eps[idx][antipodal]))
                ps[antipodal], pa[antipodal] = rs, ra
            with np.errstate(divide="ignore", invalid="ignore"):
                pa = np.where(near, np.log(np.maximum(m - dc, 0.0)), pa)
            ps = np.where(near, 1.0, ps)
        if derivative:
            sK[idx], aK[idx] = sK[idx] * ps, aK[idx] + pa
        elif ntk:
            with np.errstate(over="ignore"):  # a sum of logs past float64: +-inf, handled
                k_s, k_a = signed_logaddexp(
                    new_s, log_w + new_a, sK[idx] * ps, log_1mw + aK[idx] + pa - log_m
                )
            k_e = complement_from_log(k_s, k_a)
            e_old = eK[idx]
            use_c = near & (e_old < 0.5) & (sK[idx] > 0)
            if np.any(use_c):
                w = math.exp(log_w)
                kval = np.exp(aK[idx])
                e_c = w * g + (1 - w) * (e_old + kval * dc / m)
                k_e = np.where(use_c, e_c, k_e)
                with np.errstate(divide="ignore", invalid="ignore"):
                    k_a = np.where(use_c, np.log1p(-np.minimum(e_c, 1.0)), k_a)
                k_s = np.where(use_c, 1.0, k_s)
            sK[idx], aK[idx], eK[idx] = k_s, k_a, k_e
            log_D = log_D_next
        sS[idx], aS[idx], dS[idx] = new_s, new_a, new_d
        l += 1
        # ---- freeze points in the linear regime of the attractor
        if linear:
            done = _in_linear_regime(attractor, sS[idx], aS[idx], dS[idx], eK[idx], ntk)
        elif attractor.kind == "superattracting_zero":  # exact zeros stay zero
            done = np.isneginf(aS[idx]) & (np.isneginf(aK[idx]) if ntk else True)
        else:
            done = np.zeros(idx.size, dtype=bool)
        if np.any(done):
            frozen_at[idx[done]] = l
            log_D_frozen[idx[done]] = log_D
            active = idx[~done]
    if infinite and active.size:
        raise ArithmeticError(
            "infinite-depth limit did not converge within "
            f"{MAX_STEPS} steps (multiplier {attractor.multiplier:.6g} too close to 1)"
        )
    if not infinite:
        depth = int(depth)
    frozen = frozen_at >= 0
    if derivative:
        if linear and np.any(frozen_at >= 0):
            raise NotImplementedError("derivative tables are only built for parabolic duals")
        with np.errstate(over="ignore"):
            eK = complement_from_log(sK, aK)
        ntk = True
    with np.errstate(divide="ignore", invalid="ignore"):
        log_comp = np.log(eK if ntk else dS)
    if np.any(frozen) and linear:
        jumped = _jump(dual, attractor, depth, frozen, frozen_at, log_D_frozen,
                       sS, aS, dS, sK, aK, eK, ntk)
        if jumped is not None:  # complements known only in log form (they may underflow)
            log_comp[frozen] = jumped
    return DepthResult(sK, aK, log_comp) if ntk else DepthResult(sS, aS, log_comp)


def _in_linear_regime(att: Attractor, sS, aS, dS, eK, ntk) -> np.ndarray:
    if att.kind == "zero":
        return aS <= math.log(att.linear_radius)
    if att.kind == "interior":
        value = sS * np.exp(aS)
        # The float iteration settles within a few ulp of the root (rounding in the
        # dual); 1e-13 leaves a neglected relative term below 1e-11 in the NTK.
        return np.abs(value - att.point) <= 1e-13 * abs(att.point)
    # "one": complement small; NTK complement small too (K_j ~ D_j in the closed form)
    ok = dS <= att.linear_radius
    return ok & (eK <= LINEAR_TOLERANCE) if ntk else ok


def _log_partial_sum(log_m: float, first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """log sum_{j=first}^{first+count-1} D_j with D_j = sum_{i<=j} m^i (m < 1)."""
    m = math.exp(log_m)
    # sum D_j = [count - m^(first+1) (1 - m^count) / (1 - m)] / (1 - m)
    tail = np.exp(log_m * (first + 1)) * (-np.expm1(log_m * count)) / (1 - m)
    with np.errstate(divide="ignore"):  # count = 0: an empty sum, log 0 = -inf
        return np.log(np.maximum(count - tail, 0.0)) - math.log(1 - m)


def _jump(dual, att, depth, frozen, frozen_at, log_D_frozen, sS, aS, dS, sK, aK, eK, ntk):
    """Apply the remaining depth to frozen points in closed form (see module docstring)."""
    f = frozen
    l = frozen_at[f].astype(float)
    lam = att.multiplier
    infinite = math.isinf(depth)
    m = dual.slope_at_one
    log_m = math.log(m)
    if att.kind == "zero":
        log_lam = math.log(lam)
        if infinite:  # h = lim S_L / c0^L = S_l c0^-l (for both kernels)
            aS[f] = aS[f] - l * log_lam
            sK[f], aK[f] = sS[f], aS[f]
            dS[f] = eK[f] = np.nan
            return
        r = depth - l
        aS[f] = aS[f] + r * log_lam
        if ntk:  # K_L = lam^r (K_l + r S_l), unnormalized; K_l = k_l D_l
            with np.errstate(divide="ignore"):
                log_r = np.log(r)
            s, a = signed_logaddexp(
                sK[f], aK[f] + log_D_frozen[f], sS[f], log_r + aS[f] - r * log_lam
            )
            log_DL = _log_D(log_m, depth)
            sK[f], aK[f] = s, a + r * log_lam - log_DL
            eK[f] = complement_from_log(sK[f], aK[f])
        dS[f] = 1 - sS[f] * np.exp(aS[f])
    elif att.kind == "interior":
        if ntk:  # K_L = lam^r K_l + xi* (1 - lam^r) / (1 - lam)
            r = depth - l
            with np.errstate(divide="ignore", invalid="ignore"):
                log_lam_r = np.where(r > 0, r * (math.log(lam) if lam > 0 else -np.inf), 0.0)
                s, a = signed_logaddexp(
                    sK[f], aK[f] + log_D_frozen[f] + log_lam_r,
                    np.sign(att.point),
                    math.log(abs(att.point)) + np.log(-np.expm1(log_lam_r)) - math.log(1 - lam),
                )
            sK[f], aK[f] = s, a - _log_D(log_m, depth)
            eK[f] = complement_from_log(sK[f], aK[f])
    else:  # "one": delta_L = m^r delta_l; E_L = m^(r-1) [m E_l + delta_l (m r + beta sum D)]
        beta = dual.curvature_at_one
        if infinite:  # psi = lim delta_L / m^L (both kernels; see module docstring)
            log_psi = np.log(dS[f]) - l * log_m
            dS[f] = eK[f] = np.exp(log_psi)
            sS[f] = sK[f] = 1.0
            aS[f] = aK[f] = 0.0
            return log_psi
        r = depth - l
        log_d = np.log(dS[f])
        if ntk:
            log_E = np.log(eK[f]) + log_D_frozen[f]
            with np.errstate(divide="ignore"):  # r = 0 (frozen at the last layer): log 0
                tail = np.log(m * r + beta * np.exp(_log_partial_sum(log_m, l, r)))
            inner = np.logaddexp(log_m + log_E, log_d + tail)
            log_e = (r - 1) * log_m + inner - _log_D(log_m, depth)
            eK[f] = np.exp(log_e)
            log_comp = log_e
            aK[f] = np.log1p(-np.minimum(eK[f], 1.0))
            sK[f] = 1.0
        dS[f] = np.exp(log_d + r * log_m)
        if not ntk:
            log_comp = log_d + r * log_m
        aS[f] = np.log1p(-np.minimum(dS[f], 1.0))
        sS[f] = 1.0
        return log_comp
    return None


def _log_D(log_m: float, depth: int) -> float:
    """log D_L, D_L = sum_{i=0}^{L} m^i, without overflow."""
    if abs(log_m) < 1e-300:
        return math.log(depth + 1)
    # D_L = (m^(L+1) - 1) / (m - 1)
    x = (depth + 1) * log_m
    if log_m > 0:
        return x + math.log(-math.expm1(-x)) - math.log(math.expm1(log_m))
    return math.log(-math.expm1(x)) - math.log(-math.expm1(log_m))
