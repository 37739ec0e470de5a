"""Inner products and gaps between test and training points on the sphere."""

from __future__ import annotations

import numpy as np
from sklearn import get_config

from .compiled import JIT_LOCK, NEAR_GAP, compiled_kernels


# =========================================================================== geometry
def quiet_floats():
    """Kernel values under- and overflow by design at large depth (they are kept in log
    form); division by zero gives the intended log 0 = -inf. Invalid operations still warn."""
    return np.errstate(divide="ignore", over="ignore", under="ignore")


def row_block(n_columns: int, bytes_per_entry: int = 64) -> int:
    """Test rows per block so that a block's temporaries fit in ``working_memory``."""
    budget = get_config()["working_memory"] * 2**20
    return max(1, int(budget // (bytes_per_entry * max(n_columns, 1))))


def dots(Q: np.ndarray, XtT: np.ndarray) -> np.ndarray:
    jit = compiled_kernels()
    if jit is None:
        return Q @ XtT
    out = np.empty((Q.shape[0], XtT.shape[1]))
    Q = np.ascontiguousarray(Q)
    if out.size * Q.shape[1] < 1 << 22:  # threads cost more than they save
        jit["dots_serial"](Q, XtT, out)  # the same arithmetic, hence the same bits
        return out
    with JIT_LOCK:
        jit["dots"](Q, XtT, out)
    return out


def pair_gaps(q: np.ndarray, x: np.ndarray):
    """(1 - <q, x>, 1 + <q, x>) for row pairs, as ||q -+ x||^2 / 2 (no cancellation)."""
    diff = q - x
    summ = q + x
    return np.einsum("ij,ij->i", diff, diff) / 2, np.einsum("ij,ij->i", summ, summ) / 2


def pair_geometry(Q: np.ndarray, X: np.ndarray, XtT: np.ndarray):
    """(xi, 1 - xi, 1 + xi) between rows of Q and X; complements exact for near pairs."""
    xi = dots(Q, XtT)
    np.clip(xi, -1.0, 1.0, out=xi)
    delta = 1.0 - xi
    eps = 1.0 + xi
    near = np.minimum(delta, eps) < NEAR_GAP
    if np.any(near):
        i, j = np.nonzero(near)
        delta[i, j], eps[i, j] = pair_gaps(Q[i], X[j])
    return xi, delta, eps


def class_sums(W: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """sum_j W[i, j] coef[j, c] with a per-row summation order (block independent)."""
    out = np.empty((W.shape[0], coef.shape[1]))
    for c in range(coef.shape[1]):
        out[:, c] = np.sum(W * coef[:, c], axis=1)
    return out


def segment_sums(W: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Per-class sums of W's columns, class c being the columns seg[c]:seg[c+1]."""
    out = np.empty((W.shape[0], seg.size - 1))
    for c in range(seg.size - 1):
        out[:, c] = np.sum(W[:, seg[c]:seg[c + 1]], axis=1)
    return out
