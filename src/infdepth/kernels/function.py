"""KernelFunction: the depth-L NNGP or NTK of one activation, tabulated once."""

from __future__ import annotations

import math

import numpy as np

from ..activations import Activation, check_inner_products
from ..dynamics import Attractor, find_attractor, iterate_depth
from ..kink import parabolic_model
from .compiled import compiled_fused_values, compiled_gap_values
from .gap_table import GAP_MIN, GapTable
from .tables import (
    CHEBYSHEV_DEGREE,
    PANEL_WIDTH,
    S_MAX,
    CubicTable,
    PanelFit,
    SignedPanels,
    complements_from_s,
    log_abs_xi,
)

_LIMIT_NAMES = {
    "interior": "the majority vote (the Gram matrix tends to xi* J + (1 - xi*) I)",
    "parabolic": "the majority vote, reached only at depths >> (1 - xi)^(-1/2) "
    "(dual'(1) = 1: all kernel values tend to 1 algebraically)",
    "superattracting_zero": "the 1-nearest-neighbour rule "
    "(kernel values decay faster than any power)",
    "identity": "a linear model (the dual is xi, the kernel does not change with depth)",
}


#: The deepest finite depth accepted (depths are counted in 64-bit integers).
MAX_DEPTH = 2**63


def check_depth(depth) -> float | int:
    """Validate a depth: a non-negative integer or ``math.inf``."""
    if isinstance(depth, bool):
        raise ValueError("depth must be a non-negative integer or math.inf, not a bool")
    if isinstance(depth, (str, bytes)):
        raise ValueError(f"depth must be a non-negative integer or math.inf, not the string "
                         f"{depth!r}: pass a number (3, or math.inf for depth infinity)")
    try:
        value = float(depth)
    except (TypeError, ValueError):
        raise ValueError(
            f"depth must be a non-negative integer or math.inf, got {depth!r}"
        ) from None
    if math.isinf(value) and value > 0:
        return math.inf
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise ValueError(f"depth must be a non-negative integer or math.inf, got {depth!r}")
    depth = int(depth) if isinstance(depth, int) else int(value)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"depth {depth} exceeds 2^63, the deepest network the engine evaluates "
            "(every kernel has reached its limit long before); use math.inf for the limit"
        )
    return depth


def check_kind(kind: str) -> str:
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind must be 'nngp' or 'ntk', not {kind!r}")
    return kind


def checked_complements(xi, delta=None, eps=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (xi, 1 - xi, 1 + xi); accurate complements may be passed in."""
    xi = check_inner_products(xi)
    delta = 1.0 - xi if delta is None else np.clip(np.asarray(delta, dtype=float), 0.0, 2.0)
    eps = 1.0 + xi if eps is None else np.clip(np.asarray(eps, dtype=float), 0.0, 2.0)
    return xi, delta, eps


#: Entries processed per block (keeps the working set in cache).
BLOCK = 1 << 15

class KernelFunction:
    """The normalized depth-L NNGP or NTK of an activation as a function of xi.

    Values are divided by the value at xi = 1 (1 for the NNGP,
    D_L = sum_{i<=L} dual'(1)^i for the NTK). At ``depth=math.inf`` the function is
    the infinite-depth limit: the Koenigs function h (h(xi) ~ xi near 0, h(1) = inf)
    in the singular class; ``log_complement`` gives psi = lim (1 - S_L) / m^L when
    dual'(1) = m < 1. Other limits raise a ``ValueError`` naming the limiting rule.

    Build with :func:`kernel_function` (cached per activation); evaluate with
    ``k(xi)``, ``k.log(xi)`` (sign, log|k|) or ``k.log_complement(xi)`` (log(1 - k)).
    """

    def __init__(self, act: Activation, kind: str, depth) -> None:
        # the name, not the activation: the activation's table cache holds this object,
        # and a reference back would make the pair a cycle that only the cyclic garbage
        # collector frees (an evicted designed activation's tables, up to hundreds of MB,
        # then stayed alive for many fits)
        self.activation_name = act.name
        self.kind = check_kind(kind)
        self.depth = check_depth(depth)
        #: the dual that is iterated: a kinked Hermite series gets its parabolic model
        self.dual = parabolic_model(act.dual_function)
        #: the fixed point of the map that is iterated (for a truncated Hermite series,
        #: the polynomial's own); the activation's regime decides depth infinity
        self.attractor: Attractor = find_attractor(self.dual, tail=False)
        regime = find_attractor(self.dual)
        if self.depth == math.inf and regime.kind not in ("zero", "one"):
            raise ValueError(
                f"the infinitely deep {kind.upper()} of {act.name} is not a kernel: its "
                f"network becomes {_LIMIT_NAMES[regime.kind]}. Use a finite depth, "
                "or infdepth.limit() for the limiting rule."
            )
        lead = self.dual.leading_term()
        #: When dual(0) = 0, k(xi) ~ c xi^order near 0 with order = p^L (p the leading
        #: power of the dual); the table then holds log|k / xi^order|, which is smooth.
        order = 1 if self.depth == math.inf else lead.power ** min(self.depth, 64)
        # (depth 0 is the kernel xi itself, of order 1 whatever the dual)
        self.zero_order = order if (lead.power >= 1 or self.depth == 0) and order <= 64 else 0
        self.zero_at_origin = self.zero_order > 0
        self._build()

    @property
    def singular_at_one(self) -> bool:
        """Whether k(1) = +inf (the depth-infinity Koenigs limit h); else k(1) = 1."""
        return self.depth == math.inf

    # ------------------------------------------------------------------ table
    def _direct(self, xi, delta, eps):
        """Direct recursion (exact up to rounding), using the dual's parity for xi < 0.

        Every regime jumps the remaining depth at a cost independent of L: closed forms
        at hyperbolic fixed points, the Fatou coordinate at a parabolic one.
        """
        xi = np.asarray(xi, dtype=float)
        delta = np.asarray(delta, dtype=float)
        eps = np.asarray(eps, dtype=float)
        parity = self.dual.parity
        flip = (xi < 0) & (parity != 0)
        d = np.where(flip, eps, delta)
        e = np.where(flip, delta, eps)
        r = iterate_depth(self.dual, np.abs(xi) if parity else xi, d, e, self.depth, self.kind,
                          self.attractor)
        sign, logabs, logcomp = r.sign, r.logabs, r.log_complement
        if parity == -1 and np.any(flip):
            sign = np.where(flip, -sign, sign)
            # 1 - k(xi) = 1 + k(-xi) for an odd kernel
            with np.errstate(invalid="ignore"):
                mirrored = np.log1p(np.exp(logabs) * np.where(flip, r.sign, 0))
            logcomp = np.where(flip, mirrored, logcomp)
        return sign, logabs, logcomp

    def _fallback(self, xi, delta, eps):
        """(sign, log|k|, log(1 - k)) where the log table has no usable cell: from the
        signed-value panels where k changes sign (:class:`SignedPanels`), else by the
        direct recursion. Not for log(1 - k) near k = 1 (the complement table's cells)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.log(delta / eps)
        values, covered = self._signed.evaluate(s, -S_MAX)
        if not covered.any():
            return self._direct(xi, delta, eps)
        if self.zero_at_origin:  # the panels hold k / xi^order
            values = values * xi**self.zero_order
        sign = np.sign(values)
        with np.errstate(divide="ignore", invalid="ignore"):
            logabs = np.log(np.abs(values))
            logcomp = np.log1p(-values)
        rest = np.flatnonzero(~covered)
        if rest.size:
            sign[rest], logabs[rest], logcomp[rest] = self._direct(xi[rest], delta[rest],
                                                                   eps[rest])
        return sign, logabs, logcomp

    def _panel_nodes(self, panels: np.ndarray, degree: int):
        """Accurate (sign, log|k| or log|k/xi|, log(1-k)) at Chebyshev nodes of panels."""
        ref = np.cos(np.pi * np.arange(degree + 1) / degree)[::-1]
        mid = -S_MAX + (panels + 0.5) * PANEL_WIDTH
        s = (mid[:, None] + PANEL_WIDTH / 2 * ref[None, :]).ravel()
        if self.zero_at_origin:  # k / xi at xi = 0 is a limit: sample it at xi ~ -5e-15
            s[s == 0] = 1e-14
        delta, eps = complements_from_s(s)
        sign, logabs, logcomp = self._direct(-np.tanh(s / 2), delta, eps)
        if self.zero_at_origin:  # tabulate k / xi^order, which has no zero at xi = 0
            with np.errstate(invalid="ignore"):
                logabs = logabs - self.zero_order * log_abs_xi(s)
            sign = sign * (-np.sign(s)) ** self.zero_order
        shape = (panels.size, degree + 1)
        return sign.reshape(shape), logabs.reshape(shape), logcomp.reshape(shape)

    def _build(self) -> None:
        """Tabulate: adaptive Chebyshev panels, then uniform cubic Hermite cells."""
        n_panels = int(round(2 * S_MAX / PANEL_WIDTH))
        everything = np.arange(n_panels)
        signs, values, comps = self._panel_nodes(everything, CHEBYSHEV_DEGREE)
        value_fit = PanelFit.fit(values, signs)
        comp_fit = PanelFit.fit(comps, np.ones_like(signs))
        for degree in (2 * CHEBYSHEV_DEGREE, 4 * CHEBYSHEV_DEGREE):
            redo = np.flatnonzero(~value_fit.converged | ~comp_fit.converged)
            if redo.size == 0:
                break
            signs, values, comps = self._panel_nodes(redo, degree)
            value_fit.refit(redo, values, signs)
            comp_fit.refit(redo, comps, np.ones_like(signs))
        for fit in (value_fit, comp_fit):  # still unresolved: evaluate those directly
            fit.sign[~fit.converged] = 0.0
        self._value_fit = value_fit  # cells built on first use (the complement form
        self._value_cells = None  # of a Gram matrix never reads them)
        # panels where k changes sign: k itself is smooth there (log|k| is not)
        signed = np.flatnonzero((value_fit.sign == 0) & ~value_fit.zero)
        self._signed = (SignedPanels.fit(n_panels, signed,
                                         *self._panel_nodes(signed, SignedPanels.DEGREE)[:2])
                        if signed.size else SignedPanels(n_panels))
        self._complement_fit = comp_fit  # cells built on first use of log_complement()
        self._complement_cells = None
        self._gap = None  # the compiled pass's GapTable, built on first use

    def _reduced_values(self, xi, delta, eps) -> np.ndarray:
        """k(xi) / xi^order, the smooth function the tables hold (|xi| < 1)."""
        sign, logabs = self._evaluate(xi, delta, eps, "log")
        order = self.zero_order
        if order == 0:  # (0 * log 0 would make xi = 0 a NaN, and its cells unusable)
            return sign * np.exp(logabs)
        with np.errstate(all="ignore"):
            reduced = sign * np.sign(xi) ** order * np.exp(logabs - order * np.log(np.abs(xi)))
        at_zero = xi == 0
        if order and np.any(at_zero):  # the limit: read the log table at s = 0
            q, sign0, direct = self._value_table.lookup(np.zeros(1))
            reduced[at_zero] = math.nan if direct[0] else sign0[0] * math.exp(q[0])
        return reduced

    def _gap_pass(self, xi: np.ndarray, out: np.ndarray, gap_min: float = GAP_MIN):
        """Compiled values from the :class:`GapTable` (float64 or float32 ``xi`` and
        ``out``); returns the indices left undone.

        Cells are usable where the cubic in the value domain is as accurate as the log
        table (1e-10 relative) and the values neither change sign nor leave
        [1e-280, 1e280]; everything else (and 1 - |xi| < ``gap_min``) is left to the
        log-domain path.
        """
        return compiled_gap_values()(xi, self._gap_table().coefs, self.zero_order, gap_min, out)

    def _gap_table(self) -> GapTable:
        if self._gap is None:
            self._gap = GapTable(self._reduced_values, rtol=1e-10, one_sign=True,
                                 smallest=1e-280, largest=1e280)
        return self._gap

    @property
    def _value_table(self) -> CubicTable:
        if self._value_cells is None:
            self._value_cells = self._value_fit.cells(-S_MAX, apart=True)
        return self._value_cells

    @property
    def _complement_table(self) -> CubicTable:
        if self._complement_cells is None:
            self._complement_cells = self._complement_fit.cells(-S_MAX)
        return self._complement_cells

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, xi, delta, eps, out: str, out_array=None):
        """Blocked table evaluation; ``out`` is "log" (sign, log|k|), "value" or "complement".

        ``delta`` and ``eps`` (1 -+ xi) may be None: they are then formed per block from
        xi, which is exact away from |xi| = 1.
        """
        shape = xi.shape
        xi = xi.ravel()
        if delta is not None:
            delta, eps = delta.ravel(), eps.ravel()
        first = np.empty(xi.size) if out_array is None else out_array.reshape(-1)
        fused = compiled_fused_values() if out == "value" and delta is None else None
        if fused is not None:
            xi = np.ascontiguousarray(xi)
            rest = self._gap_pass(xi, first)
            if rest.size:
                self._fused_log_pass(xi[rest], first, rest)
            return first.reshape(shape), None
        second = np.empty(xi.size) if out == "log" else None
        table = self._complement_table if out == "complement" else self._value_table
        parity = self.dual.parity
        for start in range(0, xi.size, BLOCK):
            sl = slice(start, start + BLOCK)
            x = xi[sl]
            if delta is None:
                d, e = 1.0 - x, 1.0 + x
            else:
                d, e = delta[sl], eps[sl]
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.divide(d, e)
                np.log(s, out=s)
            q, sign, direct = table.lookup(s)
            # xi = 1, and xi = -1 for a dual with a parity (k(-1) = parity * k(1): -1 is
            # then a fixed point too, which no recursion would leave)
            at_one = d == 0
            if parity:
                at_one |= e == 0
            any_one = bool(at_one.any())
            end_sign = np.where(d == 0, 1.0, float(parity)) if any_one else None
            if out == "complement":
                if any_one:  # log(1 - k): -inf where k = 1, log 2 where k = -1
                    q[at_one] = np.where(end_sign[at_one] > 0, -np.inf, math.log(2.0))
            elif self.zero_at_origin:  # the table holds log|k / xi^order|
                order = self.zero_order
                if out == "log":
                    with np.errstate(divide="ignore"):
                        q += order * np.log(np.abs(x))
                    sign *= np.sign(x) ** order
                else:
                    sign *= x if order == 1 else x**order
            if out != "complement" and any_one:
                q[at_one] = np.inf if self.singular_at_one else 0.0
                sign[at_one] = end_sign[at_one]
            if any_one:
                direct &= ~at_one
            _store(out, first, second, sl, sign, q, q)
            if direct.any():
                idx = np.flatnonzero(direct) + start
                dd = 1.0 - xi[idx] if delta is None else delta[idx]
                ee = 1.0 + xi[idx] if delta is None else eps[idx]
                exact = self._direct if out == "complement" else self._fallback
                _store(out, first, second, idx, *exact(xi[idx], dd, ee))
        if out == "log":
            return first.reshape(shape), second.reshape(shape)
        return first.reshape(shape), None

    def _fused_log_pass(self, xi: np.ndarray, out: np.ndarray, where: np.ndarray) -> None:
        """out[where] = k(xi) by the compiled log-table pass (cubic in log|k|, then exp)."""
        table = self._value_table
        values = np.empty(xi.size)
        direct = np.empty(xi.size, dtype=bool)
        compiled_fused_values()(xi, table.start, 1.0 / table.step, table.c0, table.c1, table.c2,
                        table.c3, table.sign, self.zero_order,
                        math.inf if self.singular_at_one else 1.0, self.dual.parity,
                        values, direct)
        out[where] = values
        if direct.any():  # the numpy path: the tables apart, the signed panels, recursion
            idx = np.flatnonzero(direct)
            _store("value", out, None, where[idx], *self._evaluate(xi[idx], None, None, "log"),
                   None)

    def log(self, xi, delta=None, eps=None) -> tuple[np.ndarray, np.ndarray]:
        """(sign, log|k(xi)|): the log-domain form, safe at any depth.

        ``delta`` = 1 - xi and ``eps`` = 1 + xi may be given when known more
        accurately than by subtraction (e.g. ||x - z||^2 / 2 for near pairs).
        """
        self._check_values_exist()
        return self._evaluate(*checked_complements(xi, delta, eps), out="log")

    def __call__(self, xi, delta=None, eps=None) -> np.ndarray:
        """Normalized kernel values k(xi) (they may underflow to 0: see :meth:`log`)."""
        self._check_values_exist()
        return self._evaluate(*checked_complements(xi, delta, eps), out="value")[0]

    def log_complement(self, xi, delta=None, eps=None) -> np.ndarray:
        """log(1 - k(xi)) (log psi(xi) at depth infinity when dual'(1) < 1)."""
        if self.depth == math.inf and self.attractor.kind == "zero":
            raise ValueError("1 - h(xi) is not a useful quantity for the singular limit h")
        return self._evaluate(*checked_complements(xi, delta, eps), out="complement")[0]

    def _check_values_exist(self) -> None:
        if self.depth == math.inf and self.attractor.kind == "one":
            raise ValueError(
                f"the infinitely deep kernel of {self.activation_name} is 1 everywhere "
                "(dual'(1) < 1); its information is in log_complement(): psi(xi)"
            )

    def __repr__(self) -> str:
        return (f"KernelFunction({self.activation_name!r}, kind={self.kind!r}, "
                f"depth={self.depth})")


def _store(out: str, first, second, where, sign, logabs, log_complement) -> None:
    """Write (sign, log|k|, log(1 - k)) into the requested output form."""
    if out == "complement":
        first[where] = log_complement
    elif out == "log":
        first[where], second[where] = sign, logabs
    else:
        with np.errstate(over="ignore", under="ignore"):
            first[where] = sign * np.exp(logabs)
