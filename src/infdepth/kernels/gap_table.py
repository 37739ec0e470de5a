"""GapTable: a kernel tabulated in the float64 bits of 1 - |xi| for fast plain values."""

from __future__ import annotations

import math

import numpy as np

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
