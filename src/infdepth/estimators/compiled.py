"""Compiled (numba) passes over test x training pairs: inner products in a fixed order,
the fused depth-infinity vote and the near-pair search; numba is optional."""

from __future__ import annotations

import functools
import threading

import numpy as np

from ..kernels import (
    GAP_BASE,
    GAP_CELLS,
    GAP_MASK,
    GAP_SHIFT,
)
from ..kernels.gram import FLOAT32_NEAR_GAP, NEAR_GAP  # noqa: F401 - re-exported

#: The fused depth-infinity pass is used from this many training points on (and only if
#: numba is importable); the choice depends on the training set only, so it is the same
#: for every block of test rows.
FAST_MIN_TRAIN = 2048
#: Training-set tile of the fused pass (columns per inner loop).
FAST_TILE = 512
#: Test rows per parallel work item of the numba kernels.
FAST_ROWS = 64

# =========================================================================== numba kernels
# Plain Python functions at module level, compiled lazily by :func:`_jit` (numba is
# optional). None of them uses fastmath: every inner product is the same sequence of IEEE
# operations (k = 0, 1, ..., d-1) whatever the blocking, which makes predictions bitwise
# reproducible across blocks and Dask chunks.

_prange = range  # replaced by numba.prange before compilation

#: Rows of the test set whose inner products one pass of the dot loop computes together
#: (each training column is loaded once for all of them).
_ROW_GROUP = 4
#: The bits of 1.0: OR-ed with a 52-bit fraction they give 1 + fraction exactly.
_ONE_BITS = np.int64(0x3FF0000000000000)
#: Unsigned offsets of a cell's coefficients (uint64 + int64 would promote to float64).
_U1, _U2, _U3 = np.uint64(1), np.uint64(2), np.uint64(3)


def _nb_row_dots_py(Q, i, nr, XtT, j0, w, buf):  # pragma: no cover - compiled by numba
    """buf[r, j] = sum_k Q[i + r, k] XtT[k, j0 + j] for r < nr <= 4, j < w, summed in the
    order k = 0, 1, ... (a multiply, then an add).

    The one inner-product loop of every compiled kernel below, so that they all round
    the same way; four rows share each load of a training column.
    """
    d = Q.shape[1]
    # (a slice per training row: indices that start at 0 let the loops vectorize)
    if nr == 4:
        q0, q1, q2, q3 = Q[i, 0], Q[i + 1, 0], Q[i + 2, 0], Q[i + 3, 0]
        column = XtT[0, j0:j0 + w]
        for j in range(w):
            x = column[j]
            buf[0, j] = q0 * x
            buf[1, j] = q1 * x
            buf[2, j] = q2 * x
            buf[3, j] = q3 * x
        for k in range(1, d):
            q0, q1, q2, q3 = Q[i, k], Q[i + 1, k], Q[i + 2, k], Q[i + 3, k]
            column = XtT[k, j0:j0 + w]
            for j in range(w):
                x = column[j]
                buf[0, j] += q0 * x
                buf[1, j] += q1 * x
                buf[2, j] += q2 * x
                buf[3, j] += q3 * x
        return
    for r in range(nr):
        q = Q[i + r, 0]
        column = XtT[0, j0:j0 + w]
        for j in range(w):
            buf[r, j] = q * column[j]
        for k in range(1, d):
            q = Q[i + r, k]
            column = XtT[k, j0:j0 + w]
            for j in range(w):
                buf[r, j] += q * column[j]


_row_dots = _nb_row_dots_py  # replaced by the compiled helper before compilation


def _nb_dots_chunk_py(Q, XtT, out, ch):  # pragma: no cover - compiled by numba
    """Rows ch * FAST_ROWS .. of out = Q @ XtT, summed in the order k = 0, 1, ..."""
    m = Q.shape[0]
    n = XtT.shape[1]
    r0 = ch * FAST_ROWS
    r1 = min(m, r0 + FAST_ROWS)
    buf = np.empty((_ROW_GROUP, FAST_TILE), dtype=Q.dtype)
    for j0 in range(0, n, FAST_TILE):
        j1 = min(n, j0 + FAST_TILE)
        for i in range(r0, r1, _ROW_GROUP):
            nr = min(_ROW_GROUP, r1 - i)
            _row_dots(Q, i, nr, XtT, j0, j1 - j0, buf)
            out[i:i + nr, j0:j1] = buf[:nr, :j1 - j0]


_dots_chunk = _nb_dots_chunk_py  # replaced by the compiled helper before compilation


def _nb_dots_py(Q, XtT, out):  # pragma: no cover - compiled by numba
    """out[i, j] = sum_k Q[i, k] XtT[k, j], summed in the order k = 0, 1, ..., chunks
    of rows on threads."""
    for ch in _prange((Q.shape[0] + FAST_ROWS - 1) // FAST_ROWS):
        _dots_chunk(Q, XtT, out, ch)


def _nb_dots_serial_py(Q, XtT, out):  # pragma: no cover - compiled by numba
    """:func:`_nb_dots_py` on one thread. A function of its own: numba's on-disk cache
    is keyed by the Python function, so one function compiled twice (with and without
    ``parallel``) would load whichever variant was cached first (measured: the threaded
    one on small blocks made GridSearchCV fits 1.5x slower)."""
    for ch in range((Q.shape[0] + FAST_ROWS - 1) // FAST_ROWS):
        _dots_chunk(Q, XtT, out, ch)


def _nb_vote_py(Q, XtT, seg, coefs, near_gap, acc, count):  # pragma: no cover
    """acc[i, c] += sum over class-c columns of table(<q_i, x_j>), near pairs excluded.

    ``count[i]`` gets the number of near pairs (1 - |xi| < near_gap) of row i; the
    training set is sorted by class, class c occupying columns seg[c]:seg[c+1]. The
    table is a :class:`~infdepth.kernels.GapTable` (``coefs``); cells and the cubic's
    variable t in [0, 1) come from the bits of 1 - |xi| (t = (mantissa bits | 1.0) - 1),
    in a loop apart from the table reads. Each tile's class sum is four interleaved
    partial sums: a fixed order, whatever the blocking of the test rows.
    """
    m = Q.shape[0]
    n = XtT.shape[1]
    n_classes = seg.shape[0] - 1
    chunks = (m + FAST_ROWS - 1) // FAST_ROWS
    for ch in _prange(chunks):
        r0 = ch * FAST_ROWS
        r1 = min(m, r0 + FAST_ROWS)
        buf = np.empty((_ROW_GROUP, FAST_TILE), dtype=Q.dtype)
        gap = np.empty(FAST_TILE)
        bits = gap.view(np.int64)
        value = np.empty(FAST_TILE)
        cells = np.empty(FAST_TILE, dtype=np.uint64)
        t_bits = np.empty(FAST_TILE, dtype=np.int64)
        t_plus_one = t_bits.view(np.float64)
        for j0 in range(0, n, FAST_TILE):
            j1 = min(n, j0 + FAST_TILE)
            w = j1 - j0
            for i in range(r0, r1, _ROW_GROUP):
                nr = min(_ROW_GROUP, r1 - i)
                _row_dots(Q, i, nr, XtT, j0, w, buf)
                for r in range(nr):
                    for j in range(w):
                        gap[j] = 1.0 - abs(buf[r, j])
                    near = 0
                    for j in range(w):
                        b = bits[j]
                        cell = min(max((b >> GAP_SHIFT) - GAP_BASE, 0), GAP_CELLS - 1)
                        cells[j] = 4 * (cell + GAP_CELLS * (buf[r, j] < 0))
                        t_bits[j] = ((b & GAP_MASK) << (52 - GAP_SHIFT)) | _ONE_BITS
                        near += gap[j] < near_gap
                    for j in range(w):
                        u = cells[j]  # unsigned: no negative-index wraparound per read
                        t = t_plus_one[j] - 1.0
                        value[j] = coefs[u] + t * (coefs[u + _U1] + t * (coefs[u + _U2]
                                                                         + t * coefs[u + _U3]))
                    if near:
                        for j in range(w):
                            if gap[j] < near_gap:
                                value[j] = 0.0
                    for c in range(n_classes):
                        s0 = max(seg[c], j0) - j0
                        s1 = min(seg[c + 1], j1) - j0
                        p0 = p1 = p2 = p3 = 0.0
                        j = s0
                        while j + 4 <= s1:
                            p0 += value[j]
                            p1 += value[j + 1]
                            p2 += value[j + 2]
                            p3 += value[j + 3]
                            j += 4
                        while j < s1:
                            p0 += value[j]
                            j += 1
                        acc[i + r, c] += (p0 + p1) + (p2 + p3)
                    count[i + r] += near


def _nb_near_py(Q, XtT, rows, offsets, near_gap, out):  # pragma: no cover
    """Column indices of the near pairs of the given rows (same arithmetic as the vote)."""
    n = XtT.shape[1]
    for r in _prange(rows.shape[0]):
        i = rows[r]
        pos = offsets[r]
        buf = np.empty((1, FAST_TILE), dtype=Q.dtype)
        for j0 in range(0, n, FAST_TILE):
            j1 = min(n, j0 + FAST_TILE)
            w = j1 - j0
            _row_dots(Q, i, 1, XtT, j0, w, buf)
            for j in range(w):
                if 1.0 - abs(buf[0, j]) < near_gap:
                    out[pos] = j0 + j
                    pos += 1


JIT_LOCK = threading.Lock()  # numba's default workqueue layer is not re-entrant
FORCE_NUMPY = False  # tests set this to exercise the pure-numpy paths


@functools.cache
def _jit():
    """The compiled kernels, or None when numba is not installed."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is an optional accelerator
        return None
    globals()["_prange"] = numba.prange
    globals()["_row_dots"] = numba.njit(cache=True, nogil=True, inline="always")(
        _nb_row_dots_py)
    globals()["_dots_chunk"] = numba.njit(cache=True, nogil=True, inline="always")(
        _nb_dots_chunk_py)
    opts = {"parallel": True, "cache": True, "nogil": True}
    return {
        "dots": numba.njit(**opts)(_nb_dots_py),
        "dots_serial": numba.njit(cache=True, nogil=True)(_nb_dots_serial_py),
        "vote": numba.njit(**opts)(_nb_vote_py),
        "near": numba.njit(**opts)(_nb_near_py),
    }


def compiled_kernels():
    return None if FORCE_NUMPY else _jit()
