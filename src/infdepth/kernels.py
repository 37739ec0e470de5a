"""Depth-L NNGP and NTK kernels, L = 0, 1, ... or infinity, at a cost independent of L.

A depth-L kernel is one function of one variable, the inner product xi (docs/theory.md
section 3). :class:`KernelFunction` tabulates it once per (activation, kind, depth):

1. accurate values at Chebyshev nodes on unit panels of the variable
   ``s = log((1 - xi) / (1 + xi))``, which resolves the steep regions near xi = +-1
   (down to 1 - |xi| = 1e-40), computed by :func:`~infdepth.dynamics.iterate_depth`;
2. the panel interpolants resampled onto a fine uniform grid as piecewise cubic
   Hermite polynomials of ``log|k|`` (of ``log|k / xi|`` when k(0) = 0), and of
   ``log(1 - k)``;
3. arrays are then evaluated by one table lookup and a cubic per entry, whatever
   the depth.

Points outside the table (1 - |xi| < 1e-40) or in a cell where the kernel changes
sign are evaluated directly by the recursion.

Plain values (Gram matrices) take a faster route when numba is installed: a
:class:`GapTable`, cells indexed by the float64 bits of 1 - |xi| and holding k itself
as a cubic (no log, no exp per entry), built from the log-domain table and checked
against it to 1e-10; cells it cannot hold accurately fall back to the log table.
:class:`Kernel` also offers float32 inner products and a torch device backend.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev as cheb

from .activations import Activation, check_informative, check_inner_products, not_an_activation
from .activations import activation as _activation
from .dynamics import Attractor, find_attractor, iterate_depth
from .kink import parabolic_model

__all__ = ["KernelFunction", "kernel_function", "nngp", "ntk", "Kernel", "check_depth",
           "check_dtype"]

#: Table range in s = log((1 - xi) / (1 + xi)).
S_MAX = 93.0
PANEL_WIDTH = 1.0
CHEBYSHEV_DEGREE = 16
CELLS_PER_PANEL = 128

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


def _check_kind(kind: str) -> str:
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind must be 'nngp' or 'ntk', not {kind!r}")
    return kind


def _complements(xi, delta=None, eps=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (xi, 1 - xi, 1 + xi); accurate complements may be passed in."""
    xi = check_inner_products(xi)
    delta = 1.0 - xi if delta is None else np.clip(np.asarray(delta, dtype=float), 0.0, 2.0)
    eps = 1.0 + xi if eps is None else np.clip(np.asarray(eps, dtype=float), 0.0, 2.0)
    return xi, delta, eps


#: Entries processed per block (keeps the working set in cache).
BLOCK = 1 << 15
#: Entries per row block of a Gram matrix on the compiled path (one reused buffer).
COMPILED_BLOCK = 1 << 22
#: Evaluate plain values with the compiled passes when numba is installed (the "fast"
#: extra: the GapTable, then the log table's cubic); False forces the numpy path.
USE_NUMBA = True


def _fused_values_py(xi, start, inv_step, c0, c1, c2, c3, cell_sign, order, at_one,
                     parity, out, direct):  # pragma: no cover - compiled by numba
    """out = sign * exp(cubic(s)) * xi^order with s = log((1 - xi) / (1 + xi)), per entry.

    The numpy path of :meth:`KernelFunction._evaluate` with the same arithmetic, in one
    pass; ``direct[i]`` marks entries outside the table or in unusable cells.
    """
    n_cells = c0.size
    for i in range(xi.size):
        x = xi[i]
        d = 1.0 - x
        direct[i] = False
        e = 1.0 + x
        if d == 0.0:
            out[i] = at_one
            continue
        if e == 0.0 and parity != 0:
            out[i] = parity * at_one
            continue
        u = (math.log(d / e) - start) * inv_step if e > 0.0 else math.inf
        if not (u >= 0.0 and u < n_cells):
            direct[i] = True
            out[i] = 0.0
            continue
        cell = int(u)
        sign = cell_sign[cell]
        if sign == 0.0:
            direct[i] = True
            out[i] = 0.0
            continue
        t = u - cell
        q = c3[cell] * t + c2[cell]
        q = q * t + c1[cell]
        q = q * t + c0[cell]
        if order == 1:
            sign *= x
        elif order > 1:
            sign *= x**order
        out[i] = sign * math.exp(q)


def _gap_values_py(xi, coefs, order, gap_min, out):
    """out = xi^order * cubic(1 - |xi|) from a :class:`GapTable`, no log or exp per entry.

    Entries with 1 - |xi| < ``gap_min`` (or NaN), or whose cell is unusable (NaN
    coefficients), get out = NaN; returns their flat indices, in order.
    """
    n = xi.size
    n_tiles = (n + GAP_TILE - 1) // GAP_TILE
    counts = np.zeros(n_tiles, dtype=np.int64)
    for tile in _gap_prange(n_tiles):
        i0 = tile * GAP_TILE
        w = min(GAP_TILE, n - i0)
        gap = np.empty(GAP_TILE)
        bits = gap.view(np.int64)
        for j in range(w):
            gap[j] = 1.0 - abs(xi[i0 + j])
        count = 0
        for j in range(w):
            x = xi[i0 + j]
            v = math.nan
            if gap[j] >= gap_min:
                b = bits[j]
                cell = (b >> GAP_SHIFT) - GAP_BASE
                if x < 0:
                    cell += GAP_CELLS
                t = (b & GAP_MASK) * GAP_TSCALE
                u = 4 * cell
                v = coefs[u] + t * (coefs[u + 1] + t * (coefs[u + 2] + t * coefs[u + 3]))
                if order == 1:
                    v *= x
                elif order > 1:
                    v *= x**order
            count += v != v
            out[i0 + j] = v
        counts[tile] = count
    fallback = np.empty(counts.sum(), dtype=np.int64)
    total = 0
    for tile in range(n_tiles):
        if counts[tile]:
            for i in range(tile * GAP_TILE, min(n, (tile + 1) * GAP_TILE)):
                if out[i] != out[i]:
                    fallback[total] = i
                    total += 1
    return fallback


_gap_prange = range  # numba.prange in the compiled version


#: Cell layout of :class:`GapTable`: cells evenly spaced in the float64 bits of the gap
#: g = 1 - |xi|, 2^(52 - GAP_SHIFT) per octave, octaves 2^GAP_LOW_EXPONENT .. 2^0.
GAP_SHIFT = 44
GAP_PER_OCTAVE = 1 << (52 - GAP_SHIFT)
GAP_LOW_EXPONENT = -14
GAP_MIN = 2.0**GAP_LOW_EXPONENT
GAP_CELLS = (-GAP_LOW_EXPONENT) * GAP_PER_OCTAVE + 1  # the last cell holds g = 1 exactly
GAP_BASE = (1023 + GAP_LOW_EXPONENT) << (52 - GAP_SHIFT)
GAP_MASK = (1 << GAP_SHIFT) - 1
GAP_TSCALE = 2.0**-GAP_SHIFT
GAP_TILE = 1024
#: Run the Gram pass's tiles in parallel. Off: on 2 cores, numba threads interleaved with
#: the 2-thread BLAS product of each block contend and the pass gets slower.
GAP_PARALLEL = False


class GapTable:
    """Piecewise cubic table of a function f(xi) on |xi| <= 1 - GAP_MIN, indexed by bits.

    Cells are evenly spaced in the float64 bits of g = 1 - |xi| (so logarithmically in g,
    256 per octave), one set for xi >= 0 and one for xi < 0, so that a compiled loop finds
    an entry's cell with a shift and reads the linear coordinate t in [0, 1) from the
    mantissa: no logarithm. On each cell f is a cubic in t interpolating f at four
    Chebyshev-like points; three more points measure the error. A cell is usable (``ok``)
    when its values are finite, of one sign if ``one_sign``, with largest magnitude in
    [smallest, largest], and the error is at most ``rtol`` times it; unusable cells
    have NaN coefficients, which the compiled passes treat as "evaluate elsewhere".
    ``coefs[4 c + k]`` is the coefficient of t^k in cell c (side xi < 0 from cell
    GAP_CELLS on): one cache line per lookup.

    Parameters
    ----------
    values : callable
        ``values(xi, delta, eps)`` -> f, with delta = 1 - xi and eps = 1 + xi exact.
    """

    NODES = np.array([0.0, 0.25, 0.75, 1.0])
    CHECKS = np.array([0.125, 0.5, 0.9])

    def __init__(self, values, *, rtol: float = 1e-9, one_sign: bool = False,
                 smallest: float = 0.0, largest: float = math.inf) -> None:
        cells = np.arange(GAP_CELLS)
        octave = cells // GAP_PER_OCTAVE + GAP_LOW_EXPONENT
        start = np.ldexp(1.0 + (cells % GAP_PER_OCTAVE) / GAP_PER_OCTAVE, octave)
        width = np.ldexp(1.0 / GAP_PER_OCTAVE, octave)
        V = np.vander(self.NODES, 4, increasing=True)
        gap = np.minimum(start[:, None] + width[:, None]
                         * np.concatenate([self.NODES, self.CHECKS]), 1.0)
        coefs, oks, self.error = [], [], 0.0
        for side in (1.0, -1.0):
            xi = side * (1.0 - gap)
            delta, eps = (gap, 2.0 - gap) if side > 0 else (2.0 - gap, gap)
            with np.errstate(all="ignore"):
                f = np.asarray(values(xi, delta, eps), dtype=float)
                c = np.linalg.solve(V, f[:, :4].T).T  # (cells, 4)
                approx = np.polynomial.polynomial.polyval(self.CHECKS, c.T, tensor=True)
                scale = np.max(np.abs(f), axis=1)
                error = np.max(np.abs(approx - f[:, 4:]), axis=1) / np.where(scale > 0, scale, 1)
            ok = np.all(np.isfinite(f), axis=1) & (scale >= smallest) & (scale <= largest)
            if one_sign:
                ok &= np.all(f > 0, axis=1) | np.all(f < 0, axis=1)
            ok &= error <= rtol
            if np.any(ok):
                self.error = max(self.error, float(np.max(error[ok])))
            c[~ok] = np.nan
            coefs.append(c)
            oks.append(ok)
        self.ok = np.concatenate(oks)
        self.coefs = np.ascontiguousarray(np.vstack(coefs)).reshape(-1)


_FUSED_VALUES = []
_GAP_VALUES = []


def _fused_values():
    """The compiled :func:`_fused_values_py`, or None without numba (or if disabled)."""
    if not USE_NUMBA:
        return None
    if not _FUSED_VALUES:
        try:
            import numba
        except ImportError:  # numba is an optional accelerator
            _FUSED_VALUES.append(None)
        else:
            _FUSED_VALUES.append(numba.njit(cache=True, nogil=True)(_fused_values_py))
    return _FUSED_VALUES[0]


def _gap_values():
    """The compiled :func:`_gap_values_py`, or None without numba (or if disabled)."""
    if not USE_NUMBA or _fused_values() is None:
        return None
    if not _GAP_VALUES:
        import numba

        globals()["_gap_prange"] = numba.prange
        compiled = numba.njit(cache=True, nogil=True, parallel=GAP_PARALLEL)(_gap_values_py)
        _GAP_VALUES.append(compiled)
    return _GAP_VALUES[0]


@dataclass
class _CubicTable:
    """Piecewise cubic Hermite table on a uniform grid of s.

    Cell i covers [start + i step, start + (i+1) step); on it the value is
    c0 + c1 t + c2 t^2 + c3 t^3 with t in [0, 1). ``sign[i]`` is the sign of the
    tabulated quantity on the cell, 0 where the cell must be computed directly
    (a sign change or a non-finite node inside its panel).
    """

    start: float
    step: float
    c0: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray
    sign: np.ndarray

    def lookup(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, sign, needs_direct) at s."""
        u = s
        u -= self.start
        u *= 1.0 / self.step
        n = self.c0.size
        lo, hi = (u.min(), u.max()) if u.size else (0.0, 0.0)
        if lo >= 0 and hi < n:  # the common case: everything inside the table
            outside = np.zeros(u.shape, dtype=bool)
        else:  # NaN (delta = eps = 0) counts as outside
            outside = ~((u >= 0) & (u < n))
            u = np.where(outside, 0.0, u)
        cell = u.astype(np.intp)
        t = u
        t -= cell
        value = np.take(self.c3, cell)
        value *= t
        value += np.take(self.c2, cell)
        value *= t
        value += np.take(self.c1, cell)
        value *= t
        value += np.take(self.c0, cell)
        sign = np.take(self.sign, cell)
        unusable = sign == 0
        return value, sign, outside | unusable


class _PanelFit:
    """Chebyshev interpolants of a tabulated quantity on unit panels of s.

    A panel is *usable* when its node values are finite with one sign, and
    *converged* when its last two Chebyshev coefficients are below 1e-14 (the
    degree is then raised by :meth:`KernelFunction._build`). Panels that are -inf
    throughout are exact zeros.
    """

    TAIL = 1e-14

    def __init__(self, n_panels: int) -> None:
        self.coefficients: list[np.ndarray | None] = [None] * n_panels
        self.sign = np.zeros(n_panels)
        self.converged = np.ones(n_panels, dtype=bool)
        self.zero = np.zeros(n_panels, dtype=bool)

    @classmethod
    def fit(cls, values: np.ndarray, signs: np.ndarray) -> _PanelFit:
        fit = cls(values.shape[0])
        fit.refit(np.arange(values.shape[0]), values, signs)
        return fit

    def refit(self, panels: np.ndarray, values: np.ndarray, signs: np.ndarray) -> None:
        degree = values.shape[1] - 1
        usable = np.all(np.isfinite(values), axis=1) & np.all(signs == signs[:, :1], axis=1)
        usable &= signs[:, 0] != 0
        self.zero[panels] = np.all(np.isneginf(values), axis=1)
        self.sign[panels] = np.where(usable, signs[:, 0], 0.0)
        self.converged[panels] = True
        if not np.any(usable):
            return
        c = _chebyshev_interpolation(degree) @ values[usable].T  # (degree + 1, n_usable)
        tail = np.max(np.abs(c[-2:]), axis=0)
        ok = tail <= self.TAIL * np.maximum(1.0, np.abs(c[0]))
        for j, p in enumerate(panels[usable]):
            self.coefficients[p] = c[:, j]
            self.converged[p] = ok[j]

    def cells(self, start: float) -> _CubicTable:
        """Cubic Hermite cells, as many per panel as the worst panel needs for 1e-12
        (absolute, in log|k|: relative in k), or a few ulps of the tabulated values."""
        panels = [p for p, c in enumerate(self.coefficients) if c is not None and self.sign[p]]
        per_panel = CELLS_PER_PANEL
        while per_panel < 32 * CELLS_PER_PANEL:
            t = np.linspace(-1, 1, 2 * per_panel + 1)
            f, df = self._values(panels, t)
            mid = _hermite_midpoints(f[:, ::2], df[:, ::2] * 2)
            # 1e-12, or the rounding of the tabulated numbers themselves when they are
            # large (log|k| ~ L log c0 at great depth): a few ulps of the largest
            allowed = np.maximum(1e-12, 8 * np.finfo(float).eps * np.max(np.abs(f), axis=1))
            if not panels or np.all(np.max(np.abs(mid - f[:, 1::2]), axis=1) <= allowed):
                break
            per_panel *= 2
        t = np.linspace(-1, 1, per_panel + 1)
        n = len(self.coefficients)
        coef = np.zeros((4, n, per_panel))
        f, df = self._values(panels, t)
        f0, f1, d0, d1 = f[:, :-1], f[:, 1:], df[:, :-1], df[:, 1:]
        coef[:, panels] = f0, d0, 3 * (f1 - f0) - 2 * d0 - d1, 2 * (f0 - f1) + d0 + d1
        cell_sign = np.repeat(self.sign, per_panel).reshape(n, per_panel)
        coef[0, self.zero] = -np.inf
        coef[1:, self.zero] = 0.0
        cell_sign[self.zero] = 1.0
        c0, c1, c2, c3 = (np.ascontiguousarray(x.ravel()) for x in coef)
        return _CubicTable(start, PANEL_WIDTH / per_panel, c0, c1, c2, c3, cell_sign.ravel())

    def _values(self, panels: list[int], t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values and derivatives (per unit of cell variable) on the grid t of each panel.

        Panels are grouped by degree; each group is one product with the Chebyshev
        Vandermonde matrix of t (and of the derivative's coefficients).
        """
        f = np.empty((len(panels), t.size))
        df = np.empty_like(f)
        groups: dict[int, list[int]] = {}
        for row, p in enumerate(panels):
            groups.setdefault(self.coefficients[p].size, []).append(row)
        for size, rows in groups.items():
            c = np.array([self.coefficients[panels[r]] for r in rows])  # (rows, size)
            vander = cheb.chebvander(t, size - 1)
            derivative = cheb.chebder(np.eye(size), axis=0)  # (size - 1, size)
            f[rows] = c @ vander.T
            df[rows] = c @ (vander[:, : size - 1] @ derivative).T * (t[1] - t[0])
        return f, df


@functools.lru_cache(maxsize=8)
def _chebyshev_interpolation(degree: int) -> np.ndarray:
    """Matrix taking values at the Chebyshev-Lobatto nodes of [-1, 1] to coefficients."""
    nodes = np.cos(np.pi * np.arange(degree + 1) / degree)[::-1]
    return np.linalg.inv(cheb.chebvander(nodes, degree))


def _hermite_midpoints(f: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolant at cell midpoints from nodal values and derivatives."""
    return (f[..., :-1] + f[..., 1:]) / 2 + (df[..., :-1] - df[..., 1:]) / 8


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
        self.activation = act
        self.kind = _check_kind(kind)
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
        self.zero_order = order if lead.power >= 1 and order <= 64 else 0
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

    def _panel_nodes(self, panels: np.ndarray, degree: int):
        """Accurate (sign, log|k| or log|k/xi|, log(1-k)) at Chebyshev nodes of panels."""
        ref = np.cos(np.pi * np.arange(degree + 1) / degree)[::-1]
        mid = -S_MAX + (panels + 0.5) * PANEL_WIDTH
        s = (mid[:, None] + PANEL_WIDTH / 2 * ref[None, :]).ravel()
        if self.zero_at_origin:  # k / xi at xi = 0 is a limit: sample it at xi ~ -5e-15
            s[s == 0] = 1e-14
        delta, eps = _from_s(s)
        sign, logabs, logcomp = self._direct(-np.tanh(s / 2), delta, eps)
        if self.zero_at_origin:  # tabulate k / xi^order, which has no zero at xi = 0
            with np.errstate(invalid="ignore"):
                logabs = logabs - self.zero_order * _log_abs_xi(s)
            sign = sign * (-np.sign(s)) ** self.zero_order
        shape = (panels.size, degree + 1)
        return sign.reshape(shape), logabs.reshape(shape), logcomp.reshape(shape)

    def _build(self) -> None:
        """Tabulate: adaptive Chebyshev panels, then uniform cubic Hermite cells."""
        n_panels = int(round(2 * S_MAX / PANEL_WIDTH))
        everything = np.arange(n_panels)
        signs, values, comps = self._panel_nodes(everything, CHEBYSHEV_DEGREE)
        value_fit = _PanelFit.fit(values, signs)
        comp_fit = _PanelFit.fit(comps, np.ones_like(signs))
        for degree in (2 * CHEBYSHEV_DEGREE, 4 * CHEBYSHEV_DEGREE):
            redo = np.flatnonzero(~value_fit.converged | ~comp_fit.converged)
            if redo.size == 0:
                break
            signs, values, comps = self._panel_nodes(redo, degree)
            value_fit.refit(redo, values, signs)
            comp_fit.refit(redo, comps, np.ones_like(signs))
        for fit in (value_fit, comp_fit):  # still unresolved: evaluate those directly
            fit.sign[~fit.converged] = 0.0
        self._value_table = value_fit.cells(-S_MAX)
        self._complement_fit = comp_fit  # cells built on first use of log_complement()
        self._complement_cells = None
        self._gap = None  # the compiled pass's GapTable, built on first use

    def _reduced_values(self, xi, delta, eps) -> np.ndarray:
        """k(xi) / xi^order, the smooth function the tables hold (|xi| < 1)."""
        sign, logabs = self._evaluate(xi, delta, eps, "log")
        order = self.zero_order
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
        return _gap_values()(xi, self._gap_table().coefs, self.zero_order, gap_min, out)

    def _gap_table(self) -> GapTable:
        if self._gap is None:
            self._gap = GapTable(self._reduced_values, rtol=1e-10, one_sign=True,
                                 smallest=1e-280, largest=1e280)
        return self._gap

    @property
    def _complement_table(self) -> _CubicTable:
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
        fused = _fused_values() if out == "value" and delta is None else None
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
                _store(out, first, second, idx, *self._direct(xi[idx], dd, ee))
        if out == "log":
            return first.reshape(shape), second.reshape(shape)
        return first.reshape(shape), None

    def _fused_log_pass(self, xi: np.ndarray, out: np.ndarray, where: np.ndarray) -> None:
        """out[where] = k(xi) by the compiled log-table pass (cubic in log|k|, then exp)."""
        table = self._value_table
        values = np.empty(xi.size)
        direct = np.empty(xi.size, dtype=bool)
        _fused_values()(xi, table.start, 1.0 / table.step, table.c0, table.c1, table.c2,
                        table.c3, table.sign, self.zero_order,
                        math.inf if self.singular_at_one else 1.0, self.dual.parity,
                        values, direct)
        out[where] = values
        if direct.any():
            idx = np.flatnonzero(direct)
            _store("value", out, None, where[idx],
                   *self._direct(xi[idx], 1.0 - xi[idx], 1.0 + xi[idx]))

    def log(self, xi, delta=None, eps=None) -> tuple[np.ndarray, np.ndarray]:
        """(sign, log|k(xi)|): the log-domain form, safe at any depth.

        ``delta`` = 1 - xi and ``eps`` = 1 + xi may be given when known more
        accurately than by subtraction (e.g. ||x - z||^2 / 2 for near pairs).
        """
        self._check_values_exist()
        return self._evaluate(*_complements(xi, delta, eps), out="log")

    def __call__(self, xi, delta=None, eps=None) -> np.ndarray:
        """Normalized kernel values k(xi) (they may underflow to 0: see :meth:`log`)."""
        self._check_values_exist()
        return self._evaluate(*_complements(xi, delta, eps), out="value")[0]

    def log_complement(self, xi, delta=None, eps=None) -> np.ndarray:
        """log(1 - k(xi)) (log psi(xi) at depth infinity when dual'(1) < 1)."""
        if self.depth == math.inf and self.attractor.kind == "zero":
            raise ValueError("1 - h(xi) is not a useful quantity for the singular limit h")
        return self._evaluate(*_complements(xi, delta, eps), out="complement")[0]

    def _check_values_exist(self) -> None:
        if self.depth == math.inf and self.attractor.kind == "one":
            raise ValueError(
                f"the infinitely deep kernel of {self.activation.name} is 1 everywhere "
                "(dual'(1) < 1); its information is in log_complement(): psi(xi)"
            )

    def __repr__(self) -> str:
        return f"KernelFunction({self.activation.name!r}, kind={self.kind!r}, depth={self.depth})"


def _store(out: str, first, second, where, sign, logabs, log_complement) -> None:
    """Write (sign, log|k|, log(1 - k)) into the requested output form."""
    if out == "complement":
        first[where] = log_complement
    elif out == "log":
        first[where], second[where] = sign, logabs
    else:
        with np.errstate(over="ignore", under="ignore"):
            first[where] = sign * np.exp(logabs)


def _from_s(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1 - xi, 1 + xi) from s = log((1 - xi) / (1 + xi)), both accurate."""
    delta = 2 / (1 + np.exp(-s))
    eps = 2 / (1 + np.exp(s))
    return delta, eps


def _log_abs_xi(s: np.ndarray) -> np.ndarray:
    """log|xi| for xi = -tanh(s / 2)."""
    with np.errstate(divide="ignore"):
        return np.log(np.abs(np.tanh(s / 2)))


def kernel_function(act, kind: str = "ntk", depth=1, *, architecture: str = "mlp",
                    branch_exponent: float = 0.5) -> KernelFunction:
    """The cached :class:`KernelFunction` of an activation (name or Activation).

    ``architecture="resnet"`` gives the residual network's kernel with branches scaled
    by L^-branch_exponent (:class:`infdepth.resnet.ResNetKernelFunction`, docs/resnet.md).
    """
    act = _activation(act) if isinstance(act, str) else act
    if not isinstance(act, Activation):
        raise TypeError(not_an_activation(act))
    from .resnet import check_architecture, check_branch_exponent, resnet_kernel_function

    act = check_informative(act)
    kind, depth = _check_kind(kind), check_depth(depth)
    gamma = check_branch_exponent(branch_exponent)
    if check_architecture(architecture) == "resnet":
        return resnet_kernel_function(act, kind, depth, gamma)
    key = (kind, depth)
    table = act._cache.get(key)
    if table is None:
        table = KernelFunction(act, kind, depth)
        act._cache[key] = table
    return table


def nngp(xi, activation, depth, *, log: bool = False, architecture: str = "mlp",
         branch_exponent: float = 0.5):
    """Normalized NNGP S_L(xi) of depth L (L = math.inf: the Koenigs limit h).

    Parameters
    ----------
    xi : array_like
        Inner products in [-1, 1].
    activation : str or Activation
    depth : int or math.inf
    log : bool
        Return ``(sign, log|S_L|)`` instead of values (never under- or overflows).
    architecture : {"mlp", "resnet"}
        ``"resnet"``: q_L(x, z) / q_L(x, x) of the residual network (docs/resnet.md).
    branch_exponent : float
        ResNet branches are scaled by L^-branch_exponent (default 1/2).
    """
    k = kernel_function(activation, "nngp", depth, architecture=architecture,
                        branch_exponent=branch_exponent)
    return k.log(xi) if log else k(xi)


def ntk(xi, activation, depth, *, log: bool = False, architecture: str = "mlp",
        branch_exponent: float = 0.5):
    """Normalized NTK K_L(xi) / K_L(1) of depth L (L = math.inf: the same limit h).

    See :func:`nngp` for the parameters (ResNet: (Theta_L + q_L) normalized at xi = 1).
    """
    k = kernel_function(activation, "ntk", depth, architecture=architecture,
                        branch_exponent=branch_exponent)
    return k.log(xi) if log else k(xi)


class Kernel:
    """Gram matrices of the normalized depth-L NNGP or NTK on unit-norm data.

    ``Kernel(activation, kind="ntk", depth=L)(X, Z)`` returns the n x m matrix
    k(<x_i, z_j>). Rows must be unit vectors (checked). Pairs that are nearly equal
    or nearly antipodal get 1 - xi = ||x - z||^2 / 2 and 1 + xi = ||x + z||^2 / 2
    computed from the vectors themselves, so no digits are lost to cancellation.
    The matrix is computed in row blocks sized by scikit-learn's ``working_memory``.
    Instances are callables ``(X, Z) -> ndarray``, usable directly as
    ``sklearn.svm.SVC(kernel=Kernel(...))`` or ``KernelRidge(kernel="precomputed")``.

    At ``depth=math.inf`` (singular class) the entries are h(<x, z>), the Koenigs
    function of docs/theory.md section 4.1, which is +inf at coincident pairs (x = z: the
    diagonal of ``K(X)``, duplicated rows) and, for an odd dual, -inf at antipodal pairs.
    A kernel method cannot use such entries (``SVC`` fails with "The dual coefficients or
    intercepts are not finite"), so by default the Gram matrix is not returned: a
    ``ValueError`` names the pairs and points to
    ``InfiniteNetworkClassifier(activation, depth=math.inf)``, which applies the
    depth-infinity rule itself (a test point equal to training points takes the mean of
    their labels). ``coincident`` chooses otherwise (docs/theory.md section 4.6).

    Parameters
    ----------
    activation, kind, depth : the kernel (see :func:`kernel_function`).
    architecture, branch_exponent : ``"mlp"`` or ``"resnet"`` with branches scaled by
        L^-branch_exponent (see :func:`kernel_function` and docs/resnet.md).
    dtype : {"float64", "float32"}
        ``"float32"`` computes the inner products in single precision (half the memory
        and about twice the matrix-product speed) and returns a float32 matrix; pairs
        with 1 - |xi| < ``FLOAT32_NEAR_GAP`` (near coincidence, where a float32 inner
        product would move the kernel most) are recomputed in float64 from the vectors.
        Accuracy against float64: see docs/api.md ("Precision").
    device : None, str or torch.device
        None: numpy (and numba, if installed) on the CPU. A torch device such as
        ``"cuda"``: the matrix products and table reads run there (PyTorch required);
        entries needing exact complements are finished on the CPU as above.
    coincident : {"raise", "inf", "nan"}, default="raise"
        Depth infinity only: what the infinite entries (coincident and, for odd duals,
        antipodal pairs) do. "raise": a ValueError naming them; "inf": return them as
        +-inf (``log=True``: log|k| = +inf), for code that handles them; "nan": return NaN
        there, so that any use of them is visible downstream.
    """

    #: Choices of ``coincident``.
    COINCIDENT = ("raise", "inf", "nan")
    #: |xi| above this uses the vectors themselves for 1 -+ xi.
    NEAR = 1 - 1e-4
    #: In float32, pairs with 1 - |xi| below this are computed in float64.
    FLOAT32_NEAR_GAP = 1e-3

    def __init__(self, activation="relu", kind: str = "ntk", depth=1, *, dtype="float64",
                 device=None, coincident="raise", architecture: str = "mlp",
                 branch_exponent: float = 0.5) -> None:
        self.activation = activation
        self.kind = kind
        self.depth = depth
        self.dtype = dtype
        self.device = device
        self.coincident = coincident
        self.architecture = architecture
        self.branch_exponent = branch_exponent

    @property
    def function(self) -> KernelFunction:
        return kernel_function(self.activation, self.kind, self.depth,
                               architecture=self.architecture,
                               branch_exponent=self.branch_exponent)

    def __call__(self, X, Z=None, *, log: bool = False):
        """Gram matrix (or ``(sign, log|K|)`` with ``log=True``, float64 on the CPU).

        Two 1-D vectors give a scalar (scikit-learn's ``pairwise_kernels`` calls a
        callable kernel that way, one pair at a time: prefer ``kernel="precomputed"``).
        """
        if np.ndim(X) == 1 and Z is not None and np.ndim(Z) == 1:
            value = self(np.atleast_2d(X), np.atleast_2d(Z), log=log)
            return (value[0][0, 0], value[1][0, 0]) if log else float(value[0, 0])
        dtype = check_dtype(self.dtype)
        if self.coincident not in self.COINCIDENT:
            raise ValueError(f"coincident must be one of {self.COINCIDENT}, got "
                             f"{self.coincident!r}")
        X = _check_unit_rows(X, "X")
        Z = X if Z is None else _check_unit_rows(Z, "Z")
        if X.shape[1] != Z.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but Z has {Z.shape[1]}")
        fn = self.function
        fn._check_values_exist()
        if X.shape[0] == 0 or Z.shape[0] == 0:  # an empty Gram matrix, of the right shape
            out = np.empty((X.shape[0], Z.shape[0]), dtype=dtype)
            return (out.copy(), out) if log else out
        if log:
            if dtype != "float64" or self.device is not None:
                raise ValueError("log=True is computed in float64 on the CPU: use "
                                 "dtype='float64' and device=None")
            signs, logs = self._log_gram(fn, X, Z)
            self._infinite_entries(logs, signs, Z is X)
            return signs, logs
        out = np.empty((X.shape[0], Z.shape[0]), dtype=dtype)
        gap_min = self.FLOAT32_NEAR_GAP if dtype == "float32" else 1.0 - self.NEAR
        if self.device is not None:
            self._device_gram(fn, X, Z, out, gap_min)
        elif dtype == "float32" or _gap_values() is not None:
            self._compiled_gram(fn, X, Z, out, gap_min)
        else:
            self._numpy_gram(fn, X, Z, out)
        self._infinite_entries(out, None, Z is X)
        return out

    def _infinite_entries(self, values: np.ndarray, signs, square: bool) -> None:
        """Apply ``coincident`` to the infinite entries of a depth-infinity Gram matrix."""
        if self.coincident == "inf" or check_depth(self.depth) != math.inf:
            return
        bad = np.isinf(values)
        if not bad.any():
            return
        if self.coincident == "nan":
            values[bad] = np.nan
            if signs is not None:
                signs[bad] = np.nan
            return
        rows, cols = np.nonzero(bad)
        shown = ", ".join(f"({i}, {j})" for i, j in zip(rows[:5], cols[:5], strict=True))
        more = f" and {rows.size - 5} more" if rows.size > 5 else ""
        where = ("the diagonal and any duplicated rows: K(X, X) always has them"
                 if square else "pairs with x = z, or x = -z for an odd dual")
        raise ValueError(
            f"{self!r}: the depth-infinity kernel is infinite at {rows.size} coincident "
            f"(or antipodal) pairs ({where}), e.g. (row, column) {shown}{more}. A kernel "
            "method cannot use an infinite Gram entry (SVC fails with non-finite dual "
            "coefficients). Use InfiniteNetworkClassifier(activation, depth=math.inf), which "
            "applies the depth-infinity rule (coincident points take their training labels), "
            "or a finite depth; pass coincident='inf' or 'nan' to get the matrix anyway."
        )

    def _numpy_gram(self, fn: KernelFunction, X, Z, out) -> None:
        for rows in _row_blocks(X.shape[0], Z.shape[0]):
            xi = X[rows] @ Z.T
            np.clip(xi, -1.0, 1.0, out=xi)
            fn._evaluate(xi, None, None, "value", out_array=out[rows])
            xi = xi.reshape(-1)
            near = np.flatnonzero(np.abs(xi) > self.NEAR)
            self._finish(fn, xi[near], near, X[rows], Z, out[rows].reshape(-1),
                         1.0 - self.NEAR)

    def _log_gram(self, fn: KernelFunction, X, Z):
        signs = np.empty((X.shape[0], Z.shape[0]))
        out = np.empty_like(signs)
        for rows in _row_blocks(X.shape[0], Z.shape[0]):
            xi, delta, eps = inner_products(X[rows], Z)
            signs[rows], out[rows] = fn.log(xi, delta, eps)
        return signs, out

    def _compiled_gram(self, fn: KernelFunction, X, Z, out, gap_min: float) -> None:
        """The value table by the compiled pass (float64 or float32 inner products);
        without numba (float32 only) every entry takes the general path."""
        Xw, Zw = (X, Z) if out.dtype == np.float64 else (X.astype(out.dtype),
                                                         Z.astype(out.dtype))
        blocks = list(_row_blocks(X.shape[0], Z.shape[0], COMPILED_BLOCK))
        buffer = np.empty((blocks[0].stop - blocks[0].start, Z.shape[0]), dtype=out.dtype)
        compiled = _gap_values() is not None
        for rows in blocks:
            xi = np.matmul(Xw[rows], Zw.T, out=buffer[: rows.stop - rows.start]).reshape(-1)
            block = out[rows].reshape(-1)
            rest = fn._gap_pass(xi, block, gap_min) if compiled else np.arange(xi.size)
            self._finish(fn, xi[rest], rest, X[rows], Z, block, gap_min)

    def _device_gram(self, fn: KernelFunction, X, Z, out, gap_min: float) -> None:
        """The value table read on a torch device; the host finishes NaN entries."""
        from .torch_backend import DeviceArrays, gap_lookup, nan_entries

        arrays = DeviceArrays(self.device, str(out.dtype))
        Zd = arrays(Z)
        coefs = arrays(fn._gap_table().coefs, exact=True)
        for rows in _row_blocks(X.shape[0], Z.shape[0]):
            xi = (arrays.block(X[rows]) @ Zd.T).reshape(-1)
            values = gap_lookup(xi, coefs, fn.zero_order, gap_min)
            block = out[rows].reshape(-1)
            block[:] = values.to(arrays.dtype).cpu().numpy()  # in the output's dtype
            rest = nan_entries(values)
            if rest.size:  # only those inner products come back to the host
                picked = xi[arrays.torch.as_tensor(rest, device=arrays.device)]
                self._finish(fn, picked.cpu().numpy(), rest, X[rows], Z, block, gap_min)

    @staticmethod
    def _finish(fn: KernelFunction, xi: np.ndarray, rest: np.ndarray, x: np.ndarray,
                Z: np.ndarray, out: np.ndarray, gap_min: float) -> None:
        """Entries ``rest`` of a row block x @ Z.T (flat indices, inner products ``xi``):
        pairs with 1 - |xi| < ``gap_min`` from the vectors themselves in float64 (exact
        complements), the others by the general evaluation of the kernel function."""
        if rest.size == 0:
            return
        values = np.clip(xi.astype(np.float64), -1.0, 1.0)
        near = 1.0 - np.abs(values) < gap_min
        far = ~near
        if np.any(far):
            out[rest[far]] = fn._evaluate(values[far], None, None, "value")[0]
        if np.any(near):
            i, j = np.divmod(rest[near], Z.shape[0])
            exact = np.clip(np.einsum("ij,ij->i", x[i], Z[j]), -1.0, 1.0)
            out[rest[near]] = fn(*_pair_complements(x[i], Z[j], exact))

    def __repr__(self) -> str:
        extra = "" if self.dtype == "float64" else f", dtype={self.dtype!r}"
        extra += "" if self.device is None else f", device={self.device!r}"
        extra += "" if self.coincident == "raise" else f", coincident={self.coincident!r}"
        if self.architecture != "mlp":
            extra += f", architecture={self.architecture!r}, branch_exponent={self.branch_exponent}"
        return (f"Kernel({self.activation!r}, kind={self.kind!r}, depth={self.depth}"
                f"{extra})")


def check_dtype(dtype) -> str:
    """'float64' or 'float32' from a name or numpy dtype; a clear error otherwise."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return name


def _check_unit_rows(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of row vectors, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinity")
    norms = np.einsum("ij,ij->i", X, X)
    bad = np.abs(norms - 1) > 1e-10
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"rows of {name} must be unit vectors (row {i} has norm {math.sqrt(norms[i]):.6g}); "
            "project the data with infdepth.SphereProjection or x / ||x||"
        )
    return X


def _row_blocks(n: int, m: int, most: int | None = None):
    """Row slices of an n x m matrix sized by scikit-learn's ``working_memory`` (and by
    ``most`` entries per block, if given)."""
    from sklearn import get_config
    from sklearn.utils import gen_batches

    # about five float64 temporaries of the block's size live at once
    rows = max(1, int(get_config()["working_memory"] * 2**20 / (5 * 8 * max(m, 1))))
    if most is not None:
        rows = min(rows, max(1, most // max(m, 1)))
    return gen_batches(n, rows)


def _pair_complements(x: np.ndarray, z: np.ndarray, xi: np.ndarray):
    """(xi, ||x - z||^2 / 2, ||x + z||^2 / 2) for paired rows: exact 1 -+ xi."""
    diff = x - z
    summ = x + z
    return xi, np.einsum("ij,ij->i", diff, diff) / 2, np.einsum("ij,ij->i", summ, summ) / 2


def inner_products(X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xi, 1 - xi, 1 + xi) for unit rows, the complements exact for near pairs."""
    xi = np.clip(X @ Z.T, -1.0, 1.0)
    delta = 1.0 - xi
    eps = 1.0 + xi
    near = np.abs(xi) > Kernel.NEAR
    if np.any(near):
        i, j = np.nonzero(near)
        _, delta[i, j], eps[i, j] = _pair_complements(X[i], Z[j], xi[i, j])
    return xi, delta, eps
