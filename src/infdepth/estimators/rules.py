"""The rules a fitted classifier applies: their names, and the weighted class votes of the
depth-infinity rules (log-domain weights, exact coincidences)."""

from __future__ import annotations

import math

import numpy as np

from .compiled import JIT_LOCK, NEAR_GAP
from .geometry import pair_gaps, pair_geometry, segment_sums

#: The values of ``InfiniteNetworkClassifier.rule_`` (and ``SingularKernelClassifier``'s
#: "hilbert"). The depth-infinity rules are spelled as the taxonomy's kinds
#: (:data:`infdepth.taxonomy.KINDS`, ``limit().kind``), one spelling everywhere: API, CLI,
#: docs and the reproduce report.
RULES = {
    # finite depth
    "interpolation": "kernel interpolation (kernel ridge regression if ridge > 0)",
    "complement": "kernel interpolation solved in complement coordinates: when the dual's "
    "attracting point is 1 (ReLU family, softplus) every kernel value tends to 1 with depth, "
    "so the solve uses 1 - k(x, z) (kept to full relative precision) plus a constant "
    "instead of k, which would be a matrix of ones to float64 precision",
    # depth infinity: the kinds of infdepth.limit()
    "singular": "singular kernel rule sign(sum_i y_i h(<x, x_i>)), h the Koenigs function",
    "nearest_neighbor": "1-nearest-neighbour rule",
    "majority_vote": "majority vote",
    "psi_interpolation": "interpolation with the conditionally negative definite limit "
    "kernel psi = lim (1 - k_L) / dual'(1)^L, plus a constant",
    # SingularKernelClassifier
    "hilbert": "Hilbert kernel rule, weights ||x - z||^(-alpha)",
}

#: Spellings of ``rule_`` before version 0.1.1, mapped to the current ones (pickles of
#: fitted estimators with the old values load with the new ones).
RULE_ALIASES = {"nearest_neighbour": "nearest_neighbor", "majority": "majority_vote",
                "psi": "psi_interpolation"}


#: Rules whose outputs are a vote of the training labels (the others interpolate).
VOTE_RULES = ("singular", "nearest_neighbor", "majority_vote", "hilbert")


# =========================================================================== rules
class VoteWeights:
    """A depth-infinity vote rule: f_c(x) = sum_{j in c} s_j w_j(x), weights in log form.

    ``log_weight(xi, delta, eps) -> (sign, log|w|)``; an infinite log-weight (x equal to a
    training point, or antipodal to one for an odd or even singular kernel) is decisive:
    the output is then the mean of s_j e_{y_j} over those points, computed exactly.
    """

    def __init__(self, log_weight, parity: int, table_key):
        self.log_weight = log_weight
        self.parity = parity
        self.table_key = table_key

    def _safe_log_weight(self, xi, delta, eps):
        """The engine's log-weights, with exactly antipodal pairs (eps = 0) handled here."""
        anti = eps == 0
        if not np.any(anti):
            return self.log_weight(xi, delta, eps)
        eps_safe = np.where(anti, 1e-300, eps)
        sign, logabs = self.log_weight(np.where(anti, -1.0 + 1e-300, xi), delta, eps_safe)
        if self.parity != 0:
            sign = np.where(anti, float(self.parity), sign)
            logabs = np.where(anti, np.inf, logabs)
        return sign, logabs

    def values(self, xi, delta, eps):
        """The weights w(xi) themselves (they may under- or overflow)."""
        sign, logabs = self._safe_log_weight(xi, delta, eps)
        with np.errstate(over="ignore", under="ignore"):
            return sign * np.exp(logabs)

    # ------------------------------------------------------------------ numpy path
    def outputs_numpy(self, Q, X, XtT, seg):
        xi, delta, eps = pair_geometry(Q, X, XtT)
        sign, logabs = self._safe_log_weight(xi, delta, eps)
        del xi, delta, eps
        return combine_dense(sign, logabs, seg)

    # ------------------------------------------------------------------ fused path
    def outputs_fast(self, Q, X, XtT, seg, table, jit, near_gap=NEAR_GAP):
        """The compiled pass; XtT's dtype (float64 or float32) sets the inner products'."""
        m = Q.shape[0]
        n_classes = seg.size - 1
        acc = np.zeros((m, n_classes))
        count = np.zeros(m, dtype=np.int64)
        Qw = np.ascontiguousarray(Q, dtype=XtT.dtype)
        with JIT_LOCK:
            jit["vote"](Qw, XtT, seg, table.coefs, near_gap, acc, count)
        rows = np.flatnonzero(count)
        if rows.size == 0:
            return acc
        offsets = np.concatenate([[0], np.cumsum(count[rows])])
        cols = np.empty(int(offsets[-1]), dtype=np.int64)
        with JIT_LOCK:
            jit["near"](Qw, XtT, rows, offsets[:-1].copy(), near_gap, cols)
        return self._add_near_pairs(acc, Q, X, rows, count[rows], cols, seg)

    def outputs_device(self, Q, X, seg, table, arrays, near_gap):
        """The table read on a torch device; near pairs finished on the host in float64."""
        from ..kernels.torch_backend import gap_lookup

        torch = arrays.torch
        W = gap_lookup(arrays.block(Q) @ arrays(X).T, arrays(table.coefs, exact=True), 0,
                       near_gap)
        near = torch.isnan(W)
        W = torch.where(near, torch.zeros_like(W), W)
        acc = torch.stack([W[:, seg[c]:seg[c + 1]].sum(dim=1) for c in range(seg.size - 1)],
                          dim=1).cpu().numpy()
        pairs = torch.nonzero(near).cpu().numpy()  # row-major: grouped by row
        if pairs.size == 0:
            return acc
        rows, counts = np.unique(pairs[:, 0], return_counts=True)
        return self._add_near_pairs(acc, Q, X, rows, counts, pairs[:, 1], seg)

    def _add_near_pairs(self, acc, Q, X, rows, counts, cols, seg):
        """Add the exact (float64, exact complements) weights of near pairs, grouped by row."""
        pair_rows = np.repeat(rows, counts)
        delta, eps = pair_gaps(Q[pair_rows], X[cols])
        xi = np.where(delta <= eps, 1.0 - delta, eps - 1.0)
        sign, logabs = self._safe_log_weight(xi, delta, eps)
        codes = np.searchsorted(seg, cols, side="right") - 1
        return combine_near(acc, rows, counts, sign, logabs, codes)


def combine_dense(sign, logabs, seg):
    """Outputs from dense (sign, log|w|) blocks, rescaled per row by the largest weight."""
    n_classes = seg.size - 1
    infinite = np.isposinf(logabs)
    hit = np.any(infinite, axis=1)
    finite_log = np.where(infinite, -np.inf, logabs)
    top = np.max(finite_log, axis=1, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        W = sign * np.exp(finite_log - top[:, None])
    f = segment_sums(W, seg)
    if np.any(hit):
        Wi = np.where(infinite[hit], sign[hit], 0.0)
        g = segment_sums(Wi, seg)
        f[hit] = g / np.maximum(np.count_nonzero(infinite[hit], axis=1), 1)[:, None]
    del n_classes
    return f


def combine_near(acc, rows, counts, sign, logabs, codes):
    """Add exactly computed near-pair weights (log form) to the table sums of their rows."""
    f = acc
    starts = np.concatenate([[0], np.cumsum(counts)])
    for r, row in enumerate(rows):
        sl = slice(starts[r], starts[r + 1])
        s, a, c = sign[sl], logabs[sl], codes[sl]
        inf = np.isposinf(a)
        if np.any(inf):
            out = np.zeros(f.shape[1])
            np.add.at(out, c[inf], s[inf])
            f[row] = out / np.count_nonzero(inf)
            continue
        top = max(0.0, float(np.max(a)))
        out = f[row] * math.exp(-top)
        np.add.at(out, c, s * np.exp(a - top))
        f[row] = out
    return f
