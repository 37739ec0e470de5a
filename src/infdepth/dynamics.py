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
  :class:`Attractor`); at a parabolic fixed point at 1 (dual'(1) = 1, e.g. ReLU) the
  jump goes through the Fatou coordinate (:mod:`infdepth.parabolic`), or, with fewer
  than ``JUMP_MIN_LAYERS`` layers left, the point is iterated, which is cheaper.

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
from .hyperbolic import (
    advance,
    log_complement_at_one,
    log_coordinate,
    ntk_at_interior,
    ntk_at_zero,
    schroder_coordinate,
)
from .parabolic import fatou_coordinate

#: Relative accuracy at which a point counts as being in the linear regime.
LINEAR_TOLERANCE = 1e-15
#: Safety cap on steps for depth = inf (or for a point that never linearizes).
MAX_STEPS = 2_000_000
#: Below this |S| the dual is replaced by its leading term c_p S^p.
TINY = 1e-250
#: A point in the Fatou regime of a parabolic fixed point is jumped to the depth only with
#: at least this many layers left; fewer are iterated exactly (each layer exact to
#: rounding, as before the point froze). The Fatou jump costs about as much as 13 layers
#: (measured: relu's NTK, 53 ms for 3,162 points against about 4 ms a layer): relu's
#: table nodes for depths 1..20 took 0.63-0.72x the time. (The closed-form jumps at hyperbolic
#: points are cheaper than a layer: applying the rule to erf made it 14% slower.)
JUMP_MIN_LAYERS = 12

#: dual'(1) counts as 1 within max(TOLERANCE_PARABOLIC, SLOPE_SAFETY x its uncertainty)
#: (the uncertainty is that of a truncated series' tail: see Dual.slope_estimate).
TOLERANCE_PARABOLIC = 1e-12
SLOPE_SAFETY = 3.0


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


def find_attractor(dual: Dual, *, tail: bool = True) -> Attractor:
    """Classify the fixed points of the dual (docs/theory.md section 4).

    With ``tail=True`` (the regime of the activation, used by every decision: the
    taxonomy, the classifiers' rules, the kernels' depth-infinity check) m is the
    dual's :meth:`~infdepth.duals.Dual.slope_estimate`, which for a truncated Hermite
    series includes the estimated tail: ReLU given as a callable is parabolic.
    ``tail=False`` classifies the map that is actually iterated (the truncated
    polynomial, whose m is below 1 for a kinked callable): the engine uses it.

    Decisions use exact information where the dual offers it (closed forms and
    polynomial duals know dual(0) and dual'(1) exactly); ``m`` is compared with 1 at
    a relative tolerance of 1e-12.
    """
    m = dual.slope_at_one
    estimate, uncertainty = dual.slope_estimate() if tail else (m, 0.0)
    lead = dual.leading_term()
    if lead.power == 1 and lead.coefficient >= 1 - 1e-15:
        return Attractor("identity", 1.0, 1.0)
    if abs(estimate - 1) <= max(TOLERANCE_PARABOLIC, SLOPE_SAFETY * uncertainty):
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
def _where_near(fn, near: np.ndarray, d: np.ndarray) -> np.ndarray:
    """fn(d) where ``near``, 0 elsewhere (the complements are used only near 1; evaluating
    them at the far points too would double the cost of a layer)."""
    out = np.zeros_like(d)
    if np.any(near):
        out[near] = fn(d[near])
    return out


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
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind must be 'nngp' or 'ntk', not {kind!r}")
    xi = np.atleast_1d(np.asarray(xi, dtype=float))
    delta = np.atleast_1d(np.asarray(delta, dtype=float)).copy()
    eps = np.atleast_1d(np.asarray(eps, dtype=float))
    attractor = attractor or find_attractor(dual)
    infinite = math.isinf(depth)
    if infinite and attractor.kind not in ("zero", "one"):
        raise ValueError(f"no infinite-depth kernel for attractor {attractor.kind!r}")
    ntk = kind == "ntk"
    # a parabolic point at 1: exact layers until every point is in the Fatou regime
    fatou = (fatou_coordinate(dual) if attractor.kind == "parabolic" and not infinite
             else None)
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
    # every point carries its own layer (the repelling pre-jump moves points ahead)
    layer = np.zeros(n, dtype=np.int64)
    log_D = np.zeros(n)  # log D_layer, D_0 = 1
    frozen_at = np.full(n, -1, dtype=np.int64)
    log_D_frozen = np.zeros(n)
    limit = MAX_STEPS if infinite else int(depth)
    linear = attractor.kind in ("zero", "interior", "one")
    schroder = (schroder_coordinate(dual, attractor.kind, attractor.point)
                if attractor.kind in ("zero", "one", "interior") else None)
    log_super = -np.inf  # below it the superattracting jump applies
    if attractor.kind == "superattracting_zero" and _super_radius(dual) > 0:
        log_super = math.log(_super_radius(dual))
    if m > 1 and attractor.kind != "identity":
        _repelling_prejump(dual, m, limit, layer, log_D, sS, aS, dS, sK, aK, eK, ntk)
    active = np.flatnonzero(layer < limit)
    while active.size:
        idx = active
        d = dS[idx]
        near = d < 0.5
        first = layer[idx] == 0
        # ---- NNGP step
        g = _where_near(dual.complement, near, d)  # far points use the direct value
        vs, va = _log_dual(dual, sS[idx], aS[idx], derivative=False)
        antipodal = first & (eps[idx] < 0.5)  # xi near -1: use 1 + xi, known exactly
        if np.any(antipodal):
            rs, ra = signed_log(dual.value_near_minus_one(eps[idx][antipodal]))
            vs[antipodal], va[antipodal] = rs, ra
        with np.errstate(divide="ignore", invalid="ignore"):
            new_a = np.where(near, np.log1p(-np.minimum(g, 1.0)), va)
        new_s = np.where(near, 1.0, vs)
        new_d = np.where(near, g, 1.0 - new_s * np.exp(np.minimum(new_a, 0.0)))
        if ntk:
            log_D_next = np.logaddexp(0.0, log_m + log_D[idx])
            log_w = -log_D_next
            log_1mw = log_m + log_D[idx] - log_D_next
            dc = _where_near(dual.derivative_complement, near, d)
            ps, pa = _log_dual(dual, sS[idx], aS[idx], derivative=True)
            if np.any(antipodal):
                rs, ra = signed_log(dual.derivative_near_minus_one(eps[idx][antipodal]))
                ps[antipodal], pa[antipodal] = rs, ra
            with np.errstate(divide="ignore", invalid="ignore"):
                pa = np.where(near, np.log(np.maximum(m - dc, 0.0)), pa)
            ps = np.where(near, 1.0, ps)
            with np.errstate(over="ignore"):  # a sum of logs past float64: +-inf, handled
                k_s, k_a = signed_logaddexp(
                    new_s, log_w + new_a, sK[idx] * ps, log_1mw + aK[idx] + pa - log_m
                )
            k_e = complement_from_log(k_s, k_a)
            e_old = eK[idx]
            use_c = near & (e_old < 0.5) & (sK[idx] > 0)
            if np.any(use_c):
                w = np.exp(log_w)
                kval = np.exp(aK[idx])
                e_c = w * g + (1 - w) * (e_old + kval * dc / m)
                k_e = np.where(use_c, e_c, k_e)
                with np.errstate(divide="ignore", invalid="ignore"):
                    k_a = np.where(use_c, np.log1p(-np.minimum(e_c, 1.0)), k_a)
                k_s = np.where(use_c, 1.0, k_s)
            sK[idx], aK[idx], eK[idx] = k_s, k_a, k_e
            log_D[idx] = log_D_next
        sS[idx], aS[idx], dS[idx] = new_s, new_a, new_d
        layer[idx] += 1
        # ---- freeze points in the regime of the attractor where the rest is a jump
        if schroder is not None and attractor.kind == "interior":
            done = np.abs(sS[idx] * np.exp(aS[idx]) - attractor.point) <= schroder.radius
        elif schroder is not None:
            done = (aS[idx] <= math.log(schroder.radius) if attractor.kind == "zero"
                    else dS[idx] <= schroder.radius)
        elif linear:
            done = _in_linear_regime(attractor, sS[idx], aS[idx], dS[idx], eK[idx], ntk)
        elif fatou is not None:  # in the Fatou regime, with enough layers left to jump
            done = (dS[idx] <= fatou.delta_star) & (layer[idx] <= limit - JUMP_MIN_LAYERS)
        elif attractor.kind == "superattracting_zero":  # log-linear regime (or exact 0)
            done = (aS[idx] <= log_super) | (
                np.isneginf(aS[idx]) & (np.isneginf(aK[idx]) if ntk else True))
        else:
            done = np.zeros(idx.size, dtype=bool)
        if np.any(done):
            frozen_at[idx[done]] = layer[idx[done]]
            log_D_frozen[idx[done]] = log_D[idx[done]]
        finished = ~done & (layer[idx] >= limit)
        if infinite and np.any(finished):
            raise ArithmeticError(
                "infinite-depth limit did not converge within "
                f"{MAX_STEPS} steps (multiplier {attractor.multiplier:.6g} too close to 1)"
            )
        active = idx[~done & ~finished]
    if not infinite:
        depth = int(depth)
    frozen = frozen_at >= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_comp = np.log(eK if ntk else dS)
    if fatou is not None and np.any(frozen):
        _fatou_jump(fatou, depth, frozen, frozen_at, sS, aS, dS, sK, aK, eK, log_comp, ntk)
    if attractor.kind == "superattracting_zero" and np.any(frozen):
        log_comp[frozen] = _superattracting_jump(dual, m, depth, frozen, frozen_at,
                                                 log_D_frozen, sS, aS, dS, sK, aK, eK, ntk)
    if np.any(frozen) and schroder is not None:
        jumped = _schroder_jump(schroder, attractor, m, depth, frozen, frozen_at,
                                log_D_frozen, sS, aS, dS, sK, aK, eK, ntk)
        if jumped is not None:
            log_comp[frozen] = jumped
    elif np.any(frozen) and linear:
        jumped = _jump(dual, attractor, depth, frozen, frozen_at, log_D_frozen,
                       sS, aS, dS, sK, aK, eK, ntk)
        if jumped is not None:  # complements known only in log form (they may underflow)
            log_comp[frozen] = jumped
    return DepthResult(sK, aK, log_comp) if ntk else DepthResult(sS, aS, log_comp)


#: dual(s) = c s^p (1 + r(s)) counts as c s^p where |r| and the derivative's |r| are below
#: this: the log recurrence log|S_{l+1}| = p log|S_l| + log c is then exact to rounding.
SUPER_TOLERANCE = 1e-17


def _super_radius(dual: Dual) -> float:
    """Largest s = 10^-k (k <= 120) where dual(+-s) = c s^p and dual'(+-s) = p c s^(p-1) to
    SUPER_TOLERANCE (p >= 2 the leading power at a superattracting 0); 0 if none."""
    cached = dual.__dict__.get("_super_radius")
    if cached is not None:
        return cached
    lead = dual.leading_term()
    p, c = lead.power, lead.coefficient
    radius = 0.0
    for k in range(1, 121):
        if p * k > 290:
            break
        x = np.array([10.0**-k, -(10.0**-k)])
        ok = (np.all(np.abs(dual.value(x) / (c * x**p) - 1) <= SUPER_TOLERANCE)
              and np.all(np.abs(dual.derivative(x) / (p * c * x ** (p - 1)) - 1)
                         <= SUPER_TOLERANCE))
        if ok:
            radius = 10.0**-k
            break
    dual.__dict__["_super_radius"] = radius
    return radius


def _superattracting_jump(dual, m, depth, frozen, frozen_at, log_D_frozen,
                          sS, aS, dS, sK, aK, eK, ntk):
    """The remaining r = L - l layers at a superattracting 0 (docs/theory.md, 7.3).

    Where dual(S) = c S^p to rounding, a = log|S| obeys a_{l+1} = p a_l + log c, so
    a_L = p^r (a_l + b) - b with b = log c / (p - 1) (a Boettcher coordinate in log
    form), and the sign is sign_l^(p^r). For the NTK, rho = K / S obeys
    rho_{l+1} = 1 + p rho_l, so rho_L = p^r (rho_l + 1 / (p - 1)) - 1 / (p - 1) and
    log|K_L| = a_L + log rho_L. Where p^r (a_l + b) passes float64's range the log
    value is -inf (k_L = 0), as the step-by-step recursion gives. Returns log(1 - k).
    """
    f = np.flatnonzero(frozen)
    r = np.float64(depth) - frozen_at[f]
    lead = dual.leading_term()
    p, c = lead.power, lead.coefficient
    b = math.log(c) / (p - 1)
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.power(float(p), r)  # exact for p = 2 up to 2^1023, then inf
        zero = np.isneginf(aS[f])
        a_L = np.where(zero, -np.inf, scale * (aS[f] + b) - b)
        a_L = np.where(np.isnan(a_L), -np.inf, a_L)
    s_L = np.where(r > 0, sS[f] ** (p if p % 2 == 0 else 1), sS[f])
    s_L = np.where(np.isneginf(a_L), 0.0, s_L)
    if ntk:
        with np.errstate(invalid="ignore"):
            rho_s, rho_a = signed_logaddexp(sK[f] * sS[f], aK[f] + log_D_frozen[f] - aS[f],
                                            np.ones(f.size), np.full(f.size, -math.log(p - 1)))
        # log rho_L = r log p + log(rho_l + 1/(p-1)) + log1p(-p^-r / ((p-1)(rho_l + 1/(p-1))))
        with np.errstate(invalid="ignore", divide="ignore", under="ignore"):
            shrink = np.exp(-r * math.log(p) - math.log(p - 1) - rho_a) * rho_s
            log_rho = r * math.log(p) + rho_a + np.log1p(-np.minimum(shrink, 0.5))
            a_K = np.where(np.isneginf(a_L), -np.inf, a_L + log_rho - _log_D(math.log(m), depth))
        sK[f] = np.where(np.isneginf(a_K), 0.0, s_L * rho_s)
        aK[f] = a_K
        eK[f] = complement_from_log(sK[f], aK[f])
    sS[f], aS[f] = s_L, a_L
    dS[f] = complement_from_log(sS[f], aS[f])
    with np.errstate(divide="ignore"):
        return np.log(eK[f] if ntk else dS[f])


def _log_D_array(log_m: float, depth: np.ndarray) -> np.ndarray:
    """log D_L for an array of depths (see :func:`_log_D`)."""
    x = (depth + 1.0) * log_m
    if log_m > 0:
        return x + np.log(-np.expm1(-x)) - math.log(math.expm1(log_m))
    return np.log(-np.expm1(x)) - math.log(-math.expm1(log_m))


def _repelling_prejump(dual, m, limit, layer, log_D, sS, aS, dS, sK, aK, eK, ntk) -> None:
    """Move points with tiny delta = 1 - xi through the repelling point 1 (m > 1) in one
    step of the Schroder coordinate: j layers such that lam^j psi(delta) <= psi(radius)."""
    coordinate = schroder_coordinate(dual, "one")
    if coordinate is None:
        return
    tiny = np.flatnonzero((dS > 0) & (dS <= coordinate.radius))
    if tiny.size == 0:
        return
    delta = dS[tiny]
    _, log_U = log_coordinate(coordinate, np.ones(tiny.size), np.log(delta))
    target = math.log(float(coordinate(np.array(coordinate.radius))))
    steps = np.floor((target - log_U) / math.log(m))
    steps = np.minimum(steps, limit).astype(np.int64)
    move = steps >= 1
    tiny, delta, log_U, steps = tiny[move], delta[move], log_U[move], steps[move]
    if tiny.size == 0:
        return
    _, log_delta, u = advance(coordinate, np.ones(tiny.size), log_U, steps.astype(float))
    dS[tiny] = np.exp(log_delta)
    sS[tiny], aS[tiny] = 1.0, np.log1p(-dS[tiny])
    layer[tiny] = steps
    log_D_j = _log_D_array(math.log(m), steps.astype(float))
    if ntk:
        log_E = log_complement_at_one(coordinate, delta, 1.0, np.exp(log_U), u,
                                      steps.astype(float))
        eK[tiny] = np.exp(log_E - log_D_j)
        sK[tiny], aK[tiny] = 1.0, np.log1p(-eK[tiny])
        log_D[tiny] = log_D_j


def _schroder_jump(c, attractor, m, depth, frozen, frozen_at, log_D_frozen,
                   sS, aS, dS, sK, aK, eK, ntk):
    """Remaining layers of frozen points through the Schroder coordinate at 0 or 1.

    Returns the log complements of the jumped points (None at depth infinity in the
    singular class, where 1 - h is not used).
    """
    f = frozen
    l = frozen_at[f].astype(float)
    infinite = math.isinf(depth)
    log_lam = math.log(c.multiplier)
    kind = attractor.kind
    if kind == "interior":  # values stay O(1): plain floats, s = S - xi*
        point = attractor.point
        U = c(sS[f] * np.exp(aS[f]) - point)
        r = depth - l
        u = U * np.exp(r * log_lam)
        S_L = point + u * c.inverse_ratio(u)
        if ntk:
            ks, ka = ntk_at_interior(c, point, sK[f], aK[f] + log_D_frozen[f], U, u, r)
            sK[f], aK[f] = ks, ka - _log_D(math.log(m), depth)
            eK[f] = complement_from_log(sK[f], aK[f])
        sS[f], aS[f] = signed_log(S_L)
        dS[f] = complement_from_log(sS[f], aS[f])
        return np.log(eK[f] if ntk else dS[f])
    if kind == "zero":
        sign_U, log_U = log_coordinate(c, sS[f], aS[f])
        if infinite:  # h = psi(S_l) / c0^l, both kernels
            sS[f] = sK[f] = sign_U
            aS[f] = aK[f] = log_U - l * log_lam
            dS[f] = eK[f] = np.nan
            return None
        r = depth - l
        _, log_s, u = advance(c, sign_U, log_U, r)
        if ntk:
            ks, ka = ntk_at_zero(c, sK[f], aK[f] + log_D_frozen[f], sign_U, log_U, u, r)
            sK[f], aK[f] = ks, ka - _log_D(math.log(m), depth)
            eK[f] = complement_from_log(sK[f], aK[f])
        sS[f], aS[f] = sign_U, log_s
        dS[f] = complement_from_log(sS[f], aS[f])
        return np.log(eK[f] if ntk else dS[f])
    # kind == "one": the coordinate is delta = 1 - S
    _, log_U = log_coordinate(c, np.ones(l.size), np.log(dS[f]))
    if infinite:  # psi = lim delta_L / m^L = psi(delta_l) / m^l, both kernels
        log_psi = log_U - l * log_lam
        dS[f] = eK[f] = np.exp(log_psi)
        sS[f] = sK[f] = 1.0
        aS[f] = aK[f] = 0.0
        return log_psi
    r = depth - l
    _, log_d, u = advance(c, np.ones(l.size), log_U, r)
    log_comp = log_d
    if ntk:
        log_E = log_complement_at_one(c, eK[f] * np.exp(log_D_frozen[f]),
                                      np.exp(log_D_frozen[f]), np.exp(log_U), u, r)
        log_comp = log_E - _log_D(math.log(m), depth)
        eK[f] = np.exp(log_comp)
        sK[f], aK[f] = 1.0, np.log1p(-np.minimum(eK[f], 1.0))
    dS[f] = np.exp(log_d)
    sS[f], aS[f] = 1.0, np.log1p(-np.minimum(dS[f], 1.0))
    return log_comp


def _fatou_jump(fatou, depth, frozen, frozen_at, sS, aS, dS, sK, aK, eK, log_comp, ntk):
    """Jump the points frozen in the Fatou regime to ``depth`` (see infdepth.parabolic)."""
    f = np.flatnonzero(frozen)
    n = frozen_at[f]
    k_n = sK[f] * np.exp(aK[f]) if ntk else None
    steps = np.float64(depth) - n  # exact below 2^53 layers
    log_delta, log_k, log_e = fatou.jump(dS[f], steps, k_n, eK[f], n)
    delta = np.exp(log_delta)
    sS[f], aS[f], dS[f] = 1.0, np.log1p(-delta), delta
    if ntk:
        sK[f], aK[f], eK[f] = 1.0, log_k, np.exp(log_e)
        log_comp[f] = log_e
    else:
        log_comp[f] = log_delta


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
