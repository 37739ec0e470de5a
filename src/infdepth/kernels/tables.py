"""Piecewise tables of a kernel in s = log((1 - xi) / (1 + xi)): Chebyshev panel fits
resampled onto cubic Hermite cells (docs/theory.md section 3)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from numpy.polynomial import chebyshev as cheb

#: Table range in s = log((1 - xi) / (1 + xi)).
S_MAX = 93.0
PANEL_WIDTH = 1.0
CHEBYSHEV_DEGREE = 16
CELLS_PER_PANEL = 128
#: The most cells per panel of a whole table (30 MB).
MAX_CELLS = 32 * CELLS_PER_PANEL


@dataclass
class CubicTable:
    """Piecewise cubic Hermite table on a uniform grid of s.

    Cell i covers [start + i step, start + (i+1) step); on it the value is
    c0 + c1 t + c2 t^2 + c3 t^3 with t in [0, 1). ``sign[i]`` is the sign of the
    tabulated quantity on the cell, 0 where the cell must be computed otherwise (a sign
    change or a non-finite node inside its panel, or a panel in ``apart``: panel index
    -> a finer one-panel table, see :meth:`PanelFit.cells`).
    """

    start: float
    step: float
    c0: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray
    sign: np.ndarray
    apart: dict = field(default_factory=dict)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"apart": {}, **state})  # (pickled before ``apart`` existed)

    def lookup(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(value, sign, needs_direct) at s (overwritten)."""
        s_apart = s.copy() if self.apart else None
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
        if self.apart:  # cells of sign 0 in these panels: their finer tables
            idx = np.flatnonzero(unusable)
            panel = cell[idx] // round(PANEL_WIDTH / self.step)
            for p, table in self.apart.items():
                at = idx[panel == p]
                if at.size:
                    q, sg, nd = table.lookup(s_apart[at])
                    value[at], sign[at], unusable[at] = q, sg, nd
        return value, sign, outside | unusable


class PanelFit:
    """Chebyshev interpolants of a tabulated quantity on unit panels of s.

    A panel is *usable* when its node values are finite with one sign, and
    *converged* when its last two Chebyshev coefficients are below 1e-14 (the
    degree is then raised by :meth:`KernelFunction._build`). Panels that are -inf
    throughout are exact zeros.
    """

    TAIL = 1e-14
    #: ``cells(apart=True)``: from this many cells per panel on, at most APART_SHARE of
    #: the panels get finer cells in tables of their own
    APART_CELLS = 4 * CELLS_PER_PANEL
    APART_SHARE = 1 / 32

    def __init__(self, n_panels: int) -> None:
        self.coefficients: list[np.ndarray | None] = [None] * n_panels
        self.sign = np.zeros(n_panels)
        self.converged = np.ones(n_panels, dtype=bool)
        self.zero = np.zeros(n_panels, dtype=bool)

    @classmethod
    def fit(cls, values: np.ndarray, signs: np.ndarray) -> PanelFit:
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

    def cells(self, start: float, apart: bool = False) -> CubicTable:
        """Cubic Hermite cells, as many per panel as the worst panel needs for 1e-12
        (absolute, in log|k|: relative in k), or a few ulps of the tabulated values.

        ``apart``: from ``APART_CELLS`` per panel on, at most ``APART_SHARE`` of the
        panels that still need finer cells get them in tables of their own (the table's
        ``apart``; its cells there have sign 0), instead of every panel getting them.
        They are the panels next to a zero of k, where log|k| has a logarithmic
        singularity: one such panel needed 4,096 cells per panel for the whole table
        (30 MB, against 4 MB at 512).
        """
        panels = self._usable(np.arange(len(self.coefficients)))
        tolerated = int(panels.size * self.APART_SHARE) if apart else 0
        per_panel, left = self._resolution(panels, CELLS_PER_PANEL, tolerated)
        table = self._cubic(start, 0, len(self.coefficients), per_panel)
        for p in left:  # one panel: up to 16 times finer than the whole table may go
            finer, _ = self._resolution(np.array([p]), 2 * per_panel, 0, 16 * MAX_CELLS)
            table.sign[p * per_panel:(p + 1) * per_panel] = 0.0
            table.apart[int(p)] = self._cubic(start, int(p), 1, finer)
        return table

    def _resolution(self, panels: np.ndarray, per_panel: int, tolerated: int,
                    most: int = MAX_CELLS) -> tuple[int, np.ndarray]:
        """(cells per panel, panels left over): the check doubles the cells of the
        panels that still fail it until none does (a panel that passes stays passed: the
        Hermite error falls as h^4 with the cell width h), up to ``most``; from
        APART_CELLS on it stops when at most ``tolerated`` fail, and returns them."""
        failing = panels
        while failing.size and per_panel < most:
            fine, dfine = self._values(failing, np.linspace(-1, 1, 2 * per_panel + 1))
            # the cells' nodes are every other point of the check grid (derivatives per
            # unit of the cell variable: twice the fine grid's)
            mid = _hermite_midpoints(fine[:, ::2], dfine[:, ::2] * 2)
            # 1e-12, or the rounding of the tabulated numbers themselves when they are
            # large (log|k| ~ L log c0 at great depth): a few ulps of the largest
            allowed = np.maximum(1e-12, 8 * np.finfo(float).eps * np.max(np.abs(fine), axis=1))
            failing = failing[np.max(np.abs(mid - fine[:, 1::2]), axis=1) > allowed]
            if not failing.size:
                break
            if per_panel >= self.APART_CELLS and failing.size <= tolerated:
                return per_panel, failing
            per_panel *= 2
        return per_panel, np.zeros(0, dtype=np.intp)

    def _cubic(self, start: float, first: int, count: int, per_panel: int) -> CubicTable:
        """The cubic Hermite table of panels first .. first + count - 1."""
        slots = np.arange(first, first + count)
        panels = self._usable(slots)
        f, df = self._values(panels, np.linspace(-1, 1, per_panel + 1))
        coef = np.zeros((4, count, per_panel))
        f0, f1, d0, d1 = f[:, :-1], f[:, 1:], df[:, :-1], df[:, 1:]
        coef[:, panels - first] = f0, d0, 3 * (f1 - f0) - 2 * d0 - d1, 2 * (f0 - f1) + d0 + d1
        cell_sign = np.repeat(self.sign[slots], per_panel).reshape(count, per_panel)
        zero = self.zero[slots]
        coef[0, zero] = -np.inf
        coef[1:, zero] = 0.0
        cell_sign[zero] = 1.0
        c0, c1, c2, c3 = (np.ascontiguousarray(x.ravel()) for x in coef)
        return CubicTable(start + first * PANEL_WIDTH, PANEL_WIDTH / per_panel, c0, c1, c2,
                          c3, cell_sign.ravel())

    def _usable(self, slots: np.ndarray) -> np.ndarray:
        """The panels among ``slots`` with a fit of one sign (the ones cells are made for)."""
        return np.array([p for p in slots if self.coefficients[p] is not None
                         and self.sign[p]], dtype=np.intp)

    def _values(self, panels: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


class SignedPanels:
    """Chebyshev fits of the signed kernel itself on the panels where k changes sign.

    There log|k| has a logarithmic singularity (no log-domain fit converges), but k is
    smooth: a degree-``DEGREE`` interpolant of k (or k / xi^order) in s is accurate to
    ``TAIL`` times the panel's largest |k|, as accurate as the recursion evaluated in
    floating point next to a zero (its terms cancel). Panels whose fit does not
    converge, or whose values leave [``SMALLEST``, ``LARGEST``], stay with the recursion.
    """

    DEGREE = 64
    TAIL = 1e-14
    SMALLEST, LARGEST = 1e-280, 1e280

    def __init__(self, n_panels: int) -> None:
        self.coefficients: dict[int, np.ndarray] = {}
        self.ok = np.zeros(n_panels, dtype=bool)

    @classmethod
    def fit(cls, n_panels: int, panels: np.ndarray, sign: np.ndarray,
            logabs: np.ndarray) -> SignedPanels:
        """From (sign, log|k|) at the degree-``DEGREE`` Chebyshev-Lobatto nodes of
        ``panels`` (rows of ``sign`` and ``logabs``); each fit keeps its coefficients
        down to eps times the panel's largest |k|."""
        fit = cls(n_panels)
        with np.errstate(all="ignore"):
            values = sign * np.exp(logabs)
        scale = np.max(np.abs(values), axis=1)
        usable = (np.all(np.isfinite(values), axis=1) & (scale >= cls.SMALLEST)
                  & (scale <= cls.LARGEST))
        c = _chebyshev_interpolation(cls.DEGREE) @ np.where(usable[:, None], values, 0.0).T
        usable &= np.max(np.abs(c[-4:]), axis=0) <= cls.TAIL * scale
        for j in np.flatnonzero(usable):
            fit.coefficients[int(panels[j])] = cheb.chebtrim(
                c[:, j], np.finfo(float).eps * scale[j])
            fit.ok[panels[j]] = True
        return fit

    def evaluate(self, s: np.ndarray, start: float) -> tuple[np.ndarray, np.ndarray]:
        """(values, covered): the fitted k at s where its panel has a fit (NaN elsewhere)."""
        u = (s - start) / PANEL_WIDTH
        inside = np.isfinite(u) & (u >= 0) & (u < self.ok.size)
        panel = np.where(inside, u, 0).astype(np.intp)
        covered = inside & self.ok[panel]
        values = np.full(s.shape, np.nan)
        for p, coefficients in self.coefficients.items():
            at = np.flatnonzero(covered & (panel == p))
            if at.size:
                values[at] = cheb.chebval(2.0 * (u[at] - p) - 1.0, coefficients)
        return values, covered


@functools.lru_cache(maxsize=8)
def _chebyshev_interpolation(degree: int) -> np.ndarray:
    """Matrix taking values at the Chebyshev-Lobatto nodes of [-1, 1] to coefficients."""
    nodes = np.cos(np.pi * np.arange(degree + 1) / degree)[::-1]
    return np.linalg.inv(cheb.chebvander(nodes, degree))


def _hermite_midpoints(f: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolant at cell midpoints from nodal values and derivatives."""
    return (f[..., :-1] + f[..., 1:]) / 2 + (df[..., :-1] - df[..., 1:]) / 8



def complements_from_s(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1 - xi, 1 + xi) from s = log((1 - xi) / (1 + xi)), both accurate."""
    delta = 2 / (1 + np.exp(-s))
    eps = 2 / (1 + np.exp(s))
    return delta, eps


def log_abs_xi(s: np.ndarray) -> np.ndarray:
    """log|xi| for xi = -tanh(s / 2)."""
    with np.errstate(divide="ignore"):
        return np.log(np.abs(np.tanh(s / 2)))
