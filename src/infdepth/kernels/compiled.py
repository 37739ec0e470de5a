"""Compiled (numba) reads of the kernel tables; numba is optional."""

from __future__ import annotations

import math

import numpy as np

from .gap_table import GAP_BASE, GAP_CELLS, GAP_MASK, GAP_PARALLEL, GAP_SHIFT, GAP_TILE, GAP_TSCALE

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



_FUSED_VALUES = []
_GAP_VALUES = []


def compiled_fused_values():
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


def compiled_gap_values():
    """The compiled :func:`_gap_values_py`, or None without numba (or if disabled)."""
    if not USE_NUMBA or compiled_fused_values() is None:
        return None
    if not _GAP_VALUES:
        import numba

        globals()["_gap_prange"] = numba.prange
        compiled = numba.njit(cache=True, nogil=True, parallel=GAP_PARALLEL)(_gap_values_py)
        _GAP_VALUES.append(compiled)
    return _GAP_VALUES[0]
