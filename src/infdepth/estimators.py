"""scikit-learn classifiers: infinitely wide networks of any depth, and the Hilbert kernel rule.

:class:`InfiniteNetworkClassifier`
    The classifier an infinitely wide network of depth L computes once trained to zero
    squared loss: kernel interpolation (or kernel ridge regression) with the depth-L NNGP
    or NTK of :mod:`infdepth.kernels`, one-hot targets, argmax. ``depth=math.inf`` gives
    the limiting rule of docs/theory.md section 4, computed directly with no linear solve.
:class:`SingularKernelClassifier`
    The Hilbert / Devroye kernel estimate with weights ``||x - z||^(-alpha)``.
:class:`SphereProjection`
    Standardize, append a bias coordinate, normalize the rows: the inputs these
    classifiers need (they apply it themselves unless told the data is on the sphere).

Outputs
-------
Every classifier computes outputs ``f_c(x)``, one per class: the network's output for the
one-hot target of class c (the kernel-weighted class vote for the depth-infinity rules),
known up to a positive factor per sample (at large depth kernel values under- or overflow,
and only their ratios are kept, in the log domain).

* ``decision_function`` returns ``D(x) = f(x) / N(x)`` with N(x) the output for the
  constant target 1, ``sum_c f_c(x)``, when that is positive (then ``sum_c D_c = 1``: a
  kernel-weighted vote share), and ``max_c |f_c(x)|`` otherwise. Binary problems get the
  usual 1-d ``D_1 - D_0`` (positive means ``classes_[1]``).
* ``predict_proba`` is the Euclidean projection of D(x) onto the probability simplex (for
  two classes: ``p_1 = clip((1 + D_1 - D_0) / 2, 0, 1)``). Squared-loss regression on
  one-hot targets estimates P(y = c | x), so D is already an estimate of the class
  probabilities; the projection only repairs small excursions outside [0, 1] (negative
  kernel weights, interpolation overshoot). For the rules with positive weights (the
  singular kernel rule near data, the Hilbert estimate, nearest neighbour, majority vote)
  it is exactly the normalized kernel weight of each class. The projection preserves the
  order of the classes, so ``argmax predict_proba == predict``.
* The projected share s is then Laplace-smoothed as a vote of the n training labels,
  ``p_c = (n s_c + 1) / (n + K)`` with K classes, so that no class probability is
  exactly 0 or 1: a vote that is merely lopsided (a depth-infinity singular kernel is
  dominated by the nearest training points, odd duals give negative weights that the
  projection clips, 1-NN is one vote) or an interpolant that overshoots must not claim
  certainty. The smoothing is affine, so the order of the classes and ``predict`` do not
  change; for ``majority_vote`` it is the classical add-one estimate (n_c + 1) / (n + K).
  These probabilities are still not calibrated (benchmarks/README.md, "Calibration"
  measures log loss, Brier score and ECE for every rule); for calibrated ones wrap the
  estimator in ``sklearn.calibration.CalibratedClassifierCV`` (``method="temperature"``
  with scikit-learn >= 1.8, or ``"sigmoid"``; both use ``decision_function``), see
  docs/api.md, "Calibrated probabilities".

Linear algebra at finite depth
------------------------------
The Gram matrix (plus ``ridge`` I) is factored by Cholesky. When Cholesky fails or its
reciprocal condition number is below ``n * GRAM_RTOL`` (near-duplicate training points
make condition numbers of 1e18 common at moderate depth), the solver falls back to an
eigendecomposition pseudo-inverse that drops the eigenvalues below ``n * GRAM_RTOL`` times
the largest: the ridge -> 0 limit restricted to the directions the kernel values resolve
(exact duplicates then predict the mean of their labels). ``GRAM_RTOL`` = 1e-12 is the
relative accuracy the kernel tables are built to; an eigenvalue below n times it is
indistinguishable from table error (keeping one would multiply that error by up to 1e12,
and make predictions depend on the order of the training points). The fallback emits an
:class:`IllConditionedGramWarning` and is recorded in ``solver_``; it never returns NaN.

When the kernel tends to 1 everywhere (``dual'(1) <= 1``: ReLU-like activations, and the
softplus-like fourth regime), K = J - E is solved in the coordinates of the complement E =
1 - K, which the engine computes to full relative accuracy: after a Householder reflection
that maps the all-ones vector to a coordinate axis the problem splits into a positive
definite system in E (Cholesky, same fallback) and a scalar. Depth 10^6 for ReLU, or the
depth-infinity limit of the fourth regime (kernel interpolation with the conditionally
negative definite psi, an intercept and the side condition sum(beta) = 0), come out of the
same code.

Memory and speed
----------------
A fit that would need more memory for its n x n matrices (about 72 n^2 bytes at finite
depth) than ``FIT_MEMORY_LIMIT`` (default: the machine's physical memory) raises
``MemoryError`` at once, saying how much it needs. Prediction works in blocks of test
rows sized by scikit-learn's ``working_memory``
(``sklearn.set_config(working_memory=...)`` or ``sklearn.config_context``). With numba
installed, inner products are computed by a fixed-order kernel, so every prediction is
bitwise independent of how the test set is split into blocks (or Dask chunks), and the
depth-infinity kernel rules run a fused pass (inner product, table lookup of the limit
kernel, per-class accumulation) that never stores a test x train matrix.

Dask
----
``predict``, ``predict_proba`` and ``decision_function`` accept a ``dask.array.Array`` and
return one, computed blockwise along the rows; see :mod:`infdepth.distributed`.

Persistence
-----------
Fitted estimators round-trip through pickle, joblib and skops (``skops.io.dump``; load
with ``trusted=skops.io.get_untrusted_types(...)``, which lists infdepth's estimator and
table classes only) and predict bitwise as before. The kernel table predictions use
travels with the estimator (about 2-3 MB), so loading never rebuilds it (a build takes
0.2-10 s); a table already built in the loading process is used instead. Activations are
stored by recipe: built-ins by name and parameters, ``design_activation`` and
``Activation.from_dual_coefficients`` by their dual, ``Activation.from_callable(fn)`` by
``fn``, which must then be a module-level function: a lambda cannot be pickled, and
serializing an estimator that uses one raises a ``pickle.PicklingError`` that says so
(``copy.deepcopy`` and cloudpickle, which Dask and joblib's workers use, still work).
"""

from __future__ import annotations

import functools
import math
import numbers
import os
import pickle
import sys
import threading
import warnings

import numpy as np
import scipy.linalg
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.preprocessing import StandardScaler
from sklearn.utils import gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_feature_names_in,
    _num_samples,
    check_is_fitted,
    validate_data,
)

from .activations import (
    _BUILTIN_CACHE,
    Activation,
    check_informative,
    hermite_coefficients,
    hermite_series,
    not_an_activation,
)
from .activations import activation as _activation
from .duals import SeriesDual
from .dynamics import find_attractor
from .kernels import (
    GAP_BASE,
    GAP_CELLS,
    GAP_MASK,
    GAP_SHIFT,
    GapTable,
    KernelFunction,
    check_depth,
    check_dtype,
    kernel_function,
)

__all__ = [
    "InfiniteNetworkClassifier",
    "SingularKernelClassifier",
    "SphereProjection",
    "IllConditionedGramWarning",
    "RULES",
    "RULE_ALIASES",
    "VOTE_RULES",
]

#: Pairs with 1 - |<x, z>| below this get 1 -+ <x, z> from the vectors themselves.
NEAR_GAP = 1e-4
#: With dtype="float32", pairs with 1 - |<x, z>| below this are computed in float64.
FLOAT32_NEAR_GAP = 1e-3
#: The fused depth-infinity pass is used from this many training points on (and only if
#: numba is importable); the choice depends on the training set only, so it is the same
#: for every block of test rows.
FAST_MIN_TRAIN = 2048
#: Training-set tile of the fused pass (columns per inner loop).
FAST_TILE = 512
#: Test rows per parallel work item of the numba kernels.
FAST_ROWS = 64

#: Relative accuracy of kernel and complement values from the engine's tables (their
#: design target, see :mod:`infdepth.kernels`): the Gram solver's rank tolerance is n times it.
GRAM_RTOL = 1e-12

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


class IllConditionedGramWarning(UserWarning):
    """The Gram matrix was numerically singular; a pseudo-inverse was used instead."""


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


def _nb_dots_py(Q, XtT, out):  # pragma: no cover - compiled by numba
    """out[i, j] = sum_k Q[i, k] XtT[k, j], summed in the order k = 0, 1, ..."""
    m = Q.shape[0]
    n = XtT.shape[1]
    chunks = (m + FAST_ROWS - 1) // FAST_ROWS
    for ch in _prange(chunks):
        r0 = ch * FAST_ROWS
        r1 = min(m, r0 + FAST_ROWS)
        buf = np.empty((_ROW_GROUP, FAST_TILE), dtype=Q.dtype)
        for j0 in range(0, n, FAST_TILE):
            j1 = min(n, j0 + FAST_TILE)
            for i in range(r0, r1, _ROW_GROUP):
                nr = min(_ROW_GROUP, r1 - i)
                _row_dots(Q, i, nr, XtT, j0, j1 - j0, buf)
                out[i:i + nr, j0:j1] = buf[:nr, :j1 - j0]


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


_JIT_LOCK = threading.Lock()  # numba's default workqueue layer is not re-entrant
_FORCE_NUMPY = False  # tests set this to exercise the pure-numpy paths


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
    opts = {"parallel": True, "cache": True, "nogil": True}
    return {
        "dots": numba.njit(**opts)(_nb_dots_py),
        "dots_serial": numba.njit(cache=True, nogil=True)(_nb_dots_py),
        "vote": numba.njit(**opts)(_nb_vote_py),
        "near": numba.njit(**opts)(_nb_near_py),
    }


def _kernels():
    return None if _FORCE_NUMPY else _jit()


# =========================================================================== geometry
def _quiet():
    """Kernel values under- and overflow by design at large depth (they are kept in log
    form); division by zero gives the intended log 0 = -inf. Invalid operations still warn."""
    return np.errstate(divide="ignore", over="ignore", under="ignore")


def _row_block(n_columns: int, bytes_per_entry: int = 64) -> int:
    """Test rows per block so that a block's temporaries fit in ``working_memory``."""
    budget = get_config()["working_memory"] * 2**20
    return max(1, int(budget // (bytes_per_entry * max(n_columns, 1))))


def _dots(Q: np.ndarray, XtT: np.ndarray) -> np.ndarray:
    jit = _kernels()
    if jit is None:
        return Q @ XtT
    out = np.empty((Q.shape[0], XtT.shape[1]))
    Q = np.ascontiguousarray(Q)
    if out.size * Q.shape[1] < 1 << 22:  # threads cost more than they save
        jit["dots_serial"](Q, XtT, out)  # the same arithmetic, hence the same bits
        return out
    with _JIT_LOCK:
        jit["dots"](Q, XtT, out)
    return out


def _pair_gaps(q: np.ndarray, x: np.ndarray):
    """(1 - <q, x>, 1 + <q, x>) for row pairs, as ||q -+ x||^2 / 2 (no cancellation)."""
    diff = q - x
    summ = q + x
    return np.einsum("ij,ij->i", diff, diff) / 2, np.einsum("ij,ij->i", summ, summ) / 2


def _geometry(Q: np.ndarray, X: np.ndarray, XtT: np.ndarray):
    """(xi, 1 - xi, 1 + xi) between rows of Q and X; complements exact for near pairs."""
    xi = _dots(Q, XtT)
    np.clip(xi, -1.0, 1.0, out=xi)
    delta = 1.0 - xi
    eps = 1.0 + xi
    near = np.minimum(delta, eps) < NEAR_GAP
    if np.any(near):
        i, j = np.nonzero(near)
        delta[i, j], eps[i, j] = _pair_gaps(Q[i], X[j])
    return xi, delta, eps


def _class_sums(W: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """sum_j W[i, j] coef[j, c] with a per-row summation order (block independent)."""
    out = np.empty((W.shape[0], coef.shape[1]))
    for c in range(coef.shape[1]):
        out[:, c] = np.sum(W * coef[:, c], axis=1)
    return out


def _segment_sums(W: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Per-class sums of W's columns, class c being the columns seg[c]:seg[c+1]."""
    out = np.empty((W.shape[0], seg.size - 1))
    for c in range(seg.size - 1):
        out[:, c] = np.sum(W[:, seg[c]:seg[c + 1]], axis=1)
    return out


# =========================================================================== memory
#: Most memory (bytes) a fit may need for its n x n matrices; ``None`` (the default) means
#: the machine's physical memory. A fit that would need more raises ``MemoryError`` before
#: allocating anything. Finite-depth fits and the psi rule need about
#: ``FIT_MATRICES * 8 * n**2`` bytes; the other depth-infinity rules need O(n).
FIT_MEMORY_LIMIT: int | None = None
#: Peak number of float64 n x n arrays alive during a fit (8.1 measured with the
#: eigendecomposition fallback, 7.1 with Cholesky in complement coordinates).
FIT_MATRICES = 9


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def _check_fit_memory(n: int, what: str) -> None:
    """MemoryError, saying how much is needed, if the fit's matrices exceed the limit."""
    limit = FIT_MEMORY_LIMIT if FIT_MEMORY_LIMIT is not None else _physical_memory()
    need = FIT_MATRICES * 8 * n * n
    if limit is not None and need > limit:
        raise MemoryError(
            f"{what} on {n} training points needs about {need / 2**30:.3g} GiB for its "
            f"{n} x {n} kernel matrices ({FIT_MATRICES} float64 arrays), more than the "
            f"limit of {limit / 2**30:.3g} GiB (infdepth.estimators.FIT_MEMORY_LIMIT, "
            "default: physical memory). Fit on fewer points, or use depth=math.inf, whose "
            "vote rules need no kernel matrix."
        )


# =========================================================================== solvers
def _spd_solve(A: np.ndarray, B: np.ndarray, what: str):
    """Solve A X = B for symmetric positive (semi)definite A: Cholesky, else pseudo-inverse.

    Returns (X, solver, discarded): solver is "cholesky" or "eigh"; ``discarded`` the
    number of eigen-directions dropped by the pseudo-inverse.
    """
    n = A.shape[0]
    tol = n * GRAM_RTOL
    if n == 0:
        return np.zeros_like(B), "cholesky", 0
    if np.all(np.isfinite(A)):
        try:
            factor = scipy.linalg.cho_factor(A, lower=True, check_finite=False)
            anorm = float(np.max(np.sum(np.abs(A), axis=0)))
            rcond, info = scipy.linalg.lapack.dpocon(factor[0], anorm, uplo="L")
            if info == 0 and rcond > tol:
                return scipy.linalg.cho_solve(factor, B, check_finite=False), "cholesky", 0
            reason = f"reciprocal condition number {rcond:.2g}"
        except np.linalg.LinAlgError:
            reason = "Cholesky failed (not numerically positive definite)"
    else:  # pragma: no cover - kernels are finite by construction
        raise FloatingPointError(f"non-finite entries in the {what}")
    w, V = scipy.linalg.eigh(A, check_finite=False)
    cutoff = tol * max(float(w[-1]), 0.0)
    keep = w > cutoff
    discarded = int(n - np.count_nonzero(keep))
    # no direction kept (a zero matrix: every training point the same point in the
    # complement coordinates) gives X = 0, the pseudo-inverse of the zero matrix
    Vk = V[:, keep]
    X = Vk @ ((Vk.T @ B) / w[keep][:, None])
    warnings.warn(
        f"the {what} is numerically singular ({reason}); solved with an eigendecomposition "
        f"pseudo-inverse dropping {discarded} of {n} directions (eigenvalues below "
        f"{tol:.1e} x the largest): the ridge -> 0 limit on the resolvable directions. "
        "Near-duplicate training points cause this; set ridge > 0 to regularize explicitly.",
        IllConditionedGramWarning,
        stacklevel=4,
    )
    return X, "eigh", discarded


def _householder(v_first: float, A: np.ndarray) -> np.ndarray:
    """H A for H = I - 2 v v^T / v^T v, v = 1 + sqrt(n) e_1 (so H 1 = -sqrt(n) e_1)."""
    n = A.shape[0]
    v = np.ones(n)
    v[0] = v_first
    proj = (v @ A) * (2.0 / (v @ v))
    return A - np.outer(v, proj) if A.ndim == 2 else A - v * proj


def _complement_solve(E: np.ndarray, Y: np.ndarray, t: float):
    """Coefficients of kernel interpolation with K = J - t E (E symmetric, zero diagonal).

    Returns (c0, beta, solver, discarded) such that the interpolant is
    f(x) = c0 - e(x)^T beta, where e(x) = (1 - k(x, x_j)) / t. ``t = 0`` gives the
    t -> 0 limit: interpolation with the conditionally negative definite kernel E, i.e.
    [[-E, 1], [1^T, 0]] [beta; c0] = [Y; 0].
    """
    n = E.shape[0]
    v0 = 1.0 + math.sqrt(n)
    B = _householder(v0, _householder(v0, E).T)  # H E H (symmetric)
    B = (B + B.T) / 2
    r = _householder(v0, Y)
    b11, e, P = B[0, 0], B[1:, 0], -B[1:, 1:]
    if n == 1:
        z1 = r[0] / (n - t * b11)
        return -math.sqrt(n) * z1, np.zeros((1, Y.shape[1])), "cholesky", 0
    sol, solver, discarded = _spd_solve(P, np.column_stack([r[1:], e]), "kernel matrix")
    u, w = sol[:, :-1], sol[:, -1]
    z1 = (r[0] + e @ u) / (n - t * b11 - t * (e @ w))
    z2 = u + t * np.outer(w, z1)
    beta = _householder(v0, np.vstack([t * z1[None, :], z2]))
    return -math.sqrt(n) * z1, beta, solver, discarded


# =========================================================================== outputs
def _normalize(f: np.ndarray) -> np.ndarray:
    """f / N with N = sum_c f_c if positive, else max_c |f_c| (see the module docstring)."""
    total = f.sum(axis=1)
    scale = np.where(total > 0, total, np.max(np.abs(f), axis=1))
    scale = np.where(scale > 0, scale, 1.0)
    return f / scale[:, None]


def _simplex_projection(D: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row onto the probability simplex."""
    u = -np.sort(-D, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, D.shape[1] + 1)
    rho = np.count_nonzero(u - css / k > 0, axis=1)
    tau = css[np.arange(D.shape[0]), rho - 1] / rho
    return np.maximum(D - tau[:, None], 0.0)


# =========================================================================== rules
class _Weights:
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
        xi, delta, eps = _geometry(Q, X, XtT)
        sign, logabs = self._safe_log_weight(xi, delta, eps)
        del xi, delta, eps
        return _combine_dense(sign, logabs, seg)

    # ------------------------------------------------------------------ fused path
    def outputs_fast(self, Q, X, XtT, seg, table, jit, near_gap=NEAR_GAP):
        """The compiled pass; XtT's dtype (float64 or float32) sets the inner products'."""
        m = Q.shape[0]
        n_classes = seg.size - 1
        acc = np.zeros((m, n_classes))
        count = np.zeros(m, dtype=np.int64)
        Qw = np.ascontiguousarray(Q, dtype=XtT.dtype)
        with _JIT_LOCK:
            jit["vote"](Qw, XtT, seg, table.coefs, near_gap, acc, count)
        rows = np.flatnonzero(count)
        if rows.size == 0:
            return acc
        offsets = np.concatenate([[0], np.cumsum(count[rows])])
        cols = np.empty(int(offsets[-1]), dtype=np.int64)
        with _JIT_LOCK:
            jit["near"](Qw, XtT, rows, offsets[:-1].copy(), near_gap, cols)
        return self._add_near_pairs(acc, Q, X, rows, count[rows], cols, seg)

    def outputs_device(self, Q, X, seg, table, arrays, near_gap):
        """The table read on a torch device; near pairs finished on the host in float64."""
        from .torch_backend import gap_lookup

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
        delta, eps = _pair_gaps(Q[pair_rows], X[cols])
        xi = np.where(delta <= eps, 1.0 - delta, eps - 1.0)
        sign, logabs = self._safe_log_weight(xi, delta, eps)
        codes = np.searchsorted(seg, cols, side="right") - 1
        return _combine_near(acc, rows, counts, sign, logabs, codes)


def _combine_dense(sign, logabs, seg):
    """Outputs from dense (sign, log|w|) blocks, rescaled per row by the largest weight."""
    n_classes = seg.size - 1
    infinite = np.isposinf(logabs)
    hit = np.any(infinite, axis=1)
    finite_log = np.where(infinite, -np.inf, logabs)
    top = np.max(finite_log, axis=1, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        W = sign * np.exp(finite_log - top[:, None])
    f = _segment_sums(W, seg)
    if np.any(hit):
        Wi = np.where(infinite[hit], sign[hit], 0.0)
        g = _segment_sums(Wi, seg)
        f[hit] = g / np.maximum(np.count_nonzero(infinite[hit], axis=1), 1)[:, None]
    del n_classes
    return f


def _combine_near(acc, rows, counts, sign, logabs, codes):
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


# =========================================================================== projection
class SphereProjection(TransformerMixin, BaseEstimator):
    """Map rows onto the unit sphere: standardize, append a bias coordinate, normalize.

    ``x -> z / ||z||`` with ``z = ((x - mean) / std, bias)``. The bias coordinate keeps
    the map injective up to the standardization (x and 2x stay different points) and
    makes zero rows harmless: a row equal to the training mean maps to the pole
    ``(0, ..., 0, 1)``. With ``bias=0`` no coordinate is appended and an all-zero row maps
    to the first basis vector.

    Parameters
    ----------
    standardize : bool, default=True
        Center and scale every feature with a :class:`~sklearn.preprocessing.StandardScaler`
        fitted on the training data (constant features are only centered).
    bias : float, default=1.0
        Value of the appended coordinate (in standardized units); 0 appends nothing.

    Attributes
    ----------
    scaler_ : StandardScaler or None
    n_features_in_ : int
    n_features_out_ : int
    """

    def __init__(self, standardize=True, bias=1.0):
        self.standardize = standardize
        self.bias = bias

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=np.float64)
        bias = self._check_bias()
        self.scaler_ = None
        if self.standardize:
            with np.errstate(over="ignore", invalid="ignore"):
                scaler = StandardScaler().fit(X)
            bad = ~(np.isfinite(scaler.mean_) & np.isfinite(scaler.var_))
            if np.any(bad):
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"feature {j} cannot be standardized: its variance overflows float64 "
                    f"(values up to {np.max(np.abs(X[:, j])):.3g}); divide the data by a "
                    "constant first, or use standardize=False"
                )
            self.scaler_ = scaler
        self.n_features_out_ = X.shape[1] + (1 if bias > 0 else 0)
        return self

    def _check_bias(self) -> float:
        if isinstance(self.bias, bool) or not isinstance(self.bias, numbers.Real):
            raise ValueError(f"bias must be a non-negative real number, got {self.bias!r}")
        if not (math.isfinite(self.bias) and self.bias >= 0):
            raise ValueError(f"bias must be a non-negative finite number, got {self.bias!r}")
        return float(self.bias)

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._project(X)

    def _project(self, X: np.ndarray) -> np.ndarray:
        if self.scaler_ is None:
            Z = np.array(X, dtype=float)
        else:
            with np.errstate(over="ignore"):
                Z = self.scaler_.transform(X)
            if not np.all(np.isfinite(Z)):
                i = int(np.flatnonzero(~np.all(np.isfinite(Z), axis=1))[0])
                raise ValueError(
                    f"row {i} overflows float64 when standardized (values up to "
                    f"{np.max(np.abs(X[i])):.3g}, far outside the training data)"
                )
        bias = float(self.bias)
        if bias > 0:
            Z = np.hstack([Z, np.full((Z.shape[0], 1), bias)])
        return _normalize_rows(Z)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if float(self.bias) > 0:
            names = np.concatenate([names, np.array(["bias"], dtype=object)])
        return np.asarray(names, dtype=object)


def _normalize_rows(Z: np.ndarray) -> np.ndarray:
    """Rows divided by their norms (overflow-safe); zero rows become e_1."""
    Z = np.array(Z, dtype=float)
    big = np.max(np.abs(Z), axis=1, initial=0.0)
    zero = big == 0
    big[zero] = 1.0
    Z /= big[:, None]
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    norms[zero] = 1.0
    Z /= norms[:, None]
    if np.any(zero) and Z.shape[1]:
        Z[zero] = 0.0
        Z[zero, 0] = 1.0
    return Z


# =========================================================================== persistence
_TABLES = "_infdepth_tables"
_RECIPE = "_infdepth_activation"


def _scaled_call(fn, scale, x):
    """phi of :meth:`Activation.from_callable`: the callable times its normalization."""
    return scale * fn(x)


def _by_value_pickler() -> bool:
    """Whether the caller is ``copy.deepcopy`` or a cloudpickle pickler (as used by Dask
    and joblib's workers): they store lambdas by value, plain pickle and skops do not."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__") or ""
        if module == "copy" or "cloudpickle" in module.split("."):
            return True
        frame = frame.f_back
    return False


def _picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - pickle raises many kinds (PicklingError, Attribute...)
        return False
    return True


def _activation_state(act: Activation, owner: str):
    """A picklable description of an Activation, from which it is rebuilt exactly.

    Built-ins are stored by name and parameters; activations built from dual coefficients
    (``design_activation``) by their dual; ``Activation.from_callable(fn)`` by ``fn`` (which
    must be picklable by reference: a module-level function). Anything else is stored as
    is, if pickle can store it.
    """
    for (key, items), shared in _BUILTIN_CACHE.items():
        if shared is act:
            return {_RECIPE: "builtin", "key": key, "params": dict(items)}
    dual = act.dual_function
    params = dict(act.params)
    series = type(dual) is SeriesDual and act._hermite is not None
    if series and "dual_coefficients" in params:
        return {_RECIPE: "dual", "name": act.name, "params": params, "dual": dict(vars(dual)),
                "dual_error": act.dual_error, "hermite": act._hermite}
    fn = params.pop("callable", None)
    if series and fn is not None and _picklable(fn):
        return {_RECIPE: "callable", "name": act.name, "params": params, "function": fn,
                "dual": dict(vars(dual)), "dual_error": act.dual_error,
                "hermite": act._hermite}
    if _picklable(act) or _by_value_pickler():
        return act
    what = fn if fn is not None else act.function
    raise pickle.PicklingError(
        f"cannot serialize this {owner}: its activation {act.name!r} computes phi with "
        f"{what!r}, a lambda or local function, which pickle (and joblib, skops) cannot "
        "store. Define phi as a module-level function (def phi(x): ...) and build the "
        "activation with Activation.from_callable(phi), or serialize with cloudpickle."
    )


def _activation_from_state(state: dict) -> Activation:
    recipe = state[_RECIPE]
    if recipe == "builtin":
        return _activation(state["key"], **state["params"])
    dual = SeriesDual.__new__(SeriesDual)
    dual.__dict__.update(state["dual"])
    params = dict(state["params"])
    hermite = np.asarray(state["hermite"], dtype=float)
    if recipe == "dual":
        function = functools.partial(hermite_series, coefficients=hermite)
    elif recipe == "callable":
        fn = state["function"]
        params["callable"] = fn
        _, second_moment = hermite_coefficients(fn)
        function = functools.partial(_scaled_call, fn, 1.0 / math.sqrt(second_moment))
    else:
        raise ValueError(f"unknown activation recipe {recipe!r}")
    return Activation(name=state["name"], function=function, dual_function=dual,
                      dual_error=state["dual_error"], params=params, _hermite=hermite)


# =========================================================================== base class
def _is_dask_array(X) -> bool:
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks")


class _SphereClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery: projection, label coding, blocked prediction, Dask dispatch."""

    # ------------------------------------------------------------------ fitting helpers
    def _fit_common(self, X, y):
        check_dtype(self.dtype)
        if self.device is not None:
            from .torch_backend import resolve_device

            resolve_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data; "
                f"got only one class: {classes[0]!r}"
            )
        projection = self.projection
        if isinstance(projection, str):
            if projection != "auto":
                raise ValueError(f"projection must be 'auto', None or a transformer, got "
                                 f"{projection!r}")
            self.projection_ = SphereProjection().fit(X)
        elif projection is None:
            self.projection_ = None
        elif hasattr(projection, "fit") and hasattr(projection, "transform"):
            self.projection_ = clone(projection).fit(X)
        else:
            raise ValueError(f"projection must be 'auto', None or a transformer, got "
                             f"{projection!r}")
        Xs = self._to_sphere(X)
        order = np.argsort(codes, kind="stable")
        self.classes_ = classes
        self.X_fit_ = np.ascontiguousarray(Xs[order])
        self.y_fit_ = codes[order]
        self._seg = np.searchsorted(self.y_fit_, np.arange(classes.size + 1)).astype(np.int64)
        self._cache = {}
        return Xs

    def _to_sphere(self, X: np.ndarray) -> np.ndarray:
        if self.projection_ is not None:
            Z = np.asarray(self.projection_.transform(X), dtype=float)
            if Z.ndim != 2:
                raise ValueError("the projection must return a 2-d array")
            if not np.all(np.isfinite(Z)):
                raise ValueError("the projection returned NaN or infinite values")
            return _normalize_rows(Z)
        norms = np.sqrt(np.einsum("ij,ij->i", X, X))
        bad = np.abs(norms - 1) > 1e-6
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"projection=None means the rows are unit vectors, but row {i} has norm "
                f"{norms[i]:.6g}; use projection='auto' (SphereProjection)"
            )
        return X / norms[:, None]

    def _onehot(self) -> np.ndarray:
        Y = np.zeros((self.y_fit_.size, self.classes_.size))
        Y[np.arange(self.y_fit_.size), self.y_fit_] = 1.0
        return Y

    def _train_T(self, dtype=np.float64) -> np.ndarray:
        key = "XtT" if dtype == np.float64 else "XtT32"
        XtT = self._cache.get(key)
        if XtT is None:
            XtT = self._cache[key] = np.ascontiguousarray(self.X_fit_.T, dtype=dtype)
        return XtT

    def _device_arrays(self):
        """Device copies of the training set and tables, kept for later predictions."""
        from .torch_backend import DeviceArrays

        arrays = self._cache.get("device")
        if arrays is None or arrays.key != (str(self.device), self.dtype):
            arrays = self._cache["device"] = DeviceArrays(self.device, self.dtype)
        return arrays

    def __getstate__(self):
        state = dict(super().__getstate__())
        cache = state.get("_cache")
        if cache is not None:  # see "Persistence" in the module docstring
            state["_cache"] = {}
        if isinstance(state.get("activation"), Activation):
            state["activation"] = _activation_state(state["activation"], type(self).__name__)
        if cache is not None and hasattr(self, "rule_"):
            state[_TABLES] = self._persistent_tables(cache)
        return state

    def __setstate__(self, state):
        state = dict(state)
        tables = state.pop(_TABLES, None)
        if isinstance(state.get("activation"), dict) and _RECIPE in state["activation"]:
            state["activation"] = _activation_from_state(state["activation"])
        if state.get("rule_") in RULE_ALIASES:  # pickled before the rename
            state["rule_"] = RULE_ALIASES[state["rule_"]]
        super().__setstate__(state)
        if tables is not None:
            self._install_persistent_tables(tables)

    def _persistent_tables(self, cache) -> dict:
        """The tables predictions use: the engine's kernel table (with the complement
        cells if built) and the fused pass's lookup tables, as plain attribute dicts."""
        own = [(key, table) for key, table in cache.items() if isinstance(key, tuple)]
        kernel = []
        key = self._kernel_table_key()
        if key is not None:
            table = self._activation()._cache.get(key)
            if table is not None:
                attrs = {k: v for k, v in vars(table).items() if k not in ("activation", "dual")}
                kernel.append((key[0], key[1], attrs))
        return {"kernel": kernel, "own": own}

    def _kernel_table_key(self):
        return None

    def _install_persistent_tables(self, tables) -> None:
        self._cache.update(dict(tables["own"]))
        if not tables["kernel"]:
            return
        act = self._activation()
        for kind, depth, attrs in tables["kernel"]:
            if (kind, depth) not in act._cache:  # a table built in this process wins
                table = KernelFunction.__new__(KernelFunction)
                table.__dict__.update(attrs)
                table.activation, table.dual = act, act.dual_function
                act._cache[(kind, depth)] = table

    def _shipping_state(self):
        """Lookup tables and engine objects that predictions use, for a Dask worker.

        Engine tables are computed with LAPACK, whose last bits depend on the number of
        BLAS threads; shipping the ones in use (instead of rebuilding them on the worker)
        keeps worker predictions bitwise equal to in-memory ones. See
        :mod:`infdepth.distributed`.
        """
        check_is_fitted(self)
        self._outputs_block(self.X_fit_[:2])  # builds everything prediction needs
        tables = {k: v for k, v in self._cache.items() if isinstance(k, tuple)}
        act = self._activation() if hasattr(self, "_activation") else None
        return tables, act, (dict(act._cache) if act is not None else None)

    def _install_shipped_state(self, state) -> None:
        tables, act, act_cache = state
        self._cache = dict(tables)
        if act is not None:
            act._cache.update(act_cache)
            self._cache["activation"] = act

    # ------------------------------------------------------------------ prediction
    def _validated_sphere(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._to_sphere(X)

    def _outputs(self, X) -> np.ndarray:
        """Raw outputs f (n_samples, n_classes), up to a positive factor per row."""
        Q = self._validated_sphere(X)
        n = self.X_fit_.shape[0]
        out = np.empty((Q.shape[0], self.classes_.size))
        with _quiet():
            for rows in gen_batches(Q.shape[0], self._block_rows(n)):
                out[rows] = self._outputs_block(Q[rows])
        return out

    def _block_rows(self, n_train: int) -> int:
        return _row_block(n_train)

    def decision_function(self, X):
        """Normalized outputs D(x) (see the module docstring); 1-d for two classes."""
        if _is_dask_array(X):
            from .distributed import dask_method

            return dask_method(self, X, "decision_function")
        D = _normalize(self._outputs(X))
        return D[:, 1] - D[:, 0] if D.shape[1] == 2 else D

    def predict_proba(self, X):
        """Class probabilities: D(x) projected onto the simplex, Laplace-smoothed for the
        vote rules (see "Outputs" in the module docstring)."""
        if _is_dask_array(X):
            from .distributed import dask_method

            return dask_method(self, X, "predict_proba")
        P = _simplex_projection(_normalize(self._outputs(X)))
        n, k = self.X_fit_.shape[0], P.shape[1]
        return (n * P + 1.0) / (n + k)

    def predict(self, X):
        """Class labels: argmax of the outputs."""
        if _is_dask_array(X):
            from .distributed import dask_method

            return dask_method(self, X, "predict")
        D = _normalize(self._outputs(X))
        return self.classes_[np.argmax(D, axis=1)]

    # ------------------------------------------------------------------ vote rules
    def _vote_outputs(self, Q, weights: _Weights):
        """A vote rule's outputs: on a torch device, by the compiled pass (in float32 if
        asked; from FAST_MIN_TRAIN training points on in float64), or with numpy."""
        jit = _kernels()
        float32 = check_dtype(self.dtype) == "float32"
        fast = jit is not None and (float32 or self.X_fit_.shape[0] >= FAST_MIN_TRAIN)
        if fast or self.device is not None:
            table = self._cache.get(("table", weights.table_key))
            if table is None:
                table = self._cache[("table", weights.table_key)] = GapTable(
                    weights.values, largest=math.exp(600)
                )
            if np.all(table.ok):
                near_gap = FLOAT32_NEAR_GAP if float32 else NEAR_GAP
                if self.device is not None:
                    return weights.outputs_device(Q, self.X_fit_, self._seg, table,
                                                  self._device_arrays(), near_gap)
                XtT = self._train_T(np.float32 if float32 else np.float64)
                return weights.outputs_fast(Q, self.X_fit_, XtT, self._seg, table, jit,
                                            near_gap)
        return weights.outputs_numpy(Q, self.X_fit_, self._train_T(), self._seg)


# =========================================================================== the network
class InfiniteNetworkClassifier(_SphereClassifier):
    """The classifier of an infinitely wide network of any depth, trained on squared loss.

    At finite depth L the trained network predicts ``f(x) = k(x)^T (K + ridge I)^{-1} Y``
    with k the normalized depth-L NNGP or NTK of :mod:`infdepth.kernels`, Y the one-hot
    labels; the class is ``argmax_c f_c(x)``. At ``depth=math.inf`` the limiting rule of
    docs/theory.md section 4 is applied directly, chosen by the dynamics of the dual activation
    (:func:`infdepth.dynamics.find_attractor`):

    ============================  ===================================================
    dual's attractor              rule at depth infinity
    ============================  ===================================================
    0, 0 < dual'(0) < 1           singular kernel rule ``sum_i e_{y_i} h(<x, x_i>)``,
                                  h the Koenigs function (log-domain weights)
    0, dual'(0) = 0               1-nearest neighbour (antipodal points count as
                                  neighbours for even duals, with the opposite label
                                  for odd duals)
    interior point, or 1 with     majority vote (the Gram matrix tends to a multiple
    dual'(1) = 1 (ReLU)           of J plus a multiple of I)
    1 with dual'(1) < 1           interpolation with psi = lim (1 - k) / dual'(1)^L,
    (softplus)                    a conditionally negative definite kernel, plus a
                                  constant (majority vote if ridge > 0)
    dual = xi (linear)            linear-kernel interpolation (depth does not matter)
    ============================  ===================================================

    ``ridge`` does not change the singular and nearest-neighbour limits (the Gram matrix
    tends to the identity). In the majority regimes ridge > 0 turns off the exact
    coincidence exception below (a coincident test point then gets the majority vote; the
    exact ridge limit there mixes its label with the class frequencies), and in the fourth
    regime ridge > 0 gives the majority vote (the Gram matrix tends to J).

    The singular, nearest-neighbour and majority rules need no linear solve: fit is O(n)
    and prediction is one pass over the test x training inner products (the majority rule
    needs none: only exact coincidences are looked up). A test point equal to training
    points (after projection) gets the mean of their one-hot labels exactly, as the limit
    of the interpolating network does.

    Parameters
    ----------
    activation : str or Activation, default="relu"
        A built-in name (``infdepth.BUILTIN_ACTIVATIONS``) or an :class:`~infdepth.Activation`.
    kernel : {"ntk", "nngp"}, default="ntk"
        Neural tangent kernel (all layers trained) or NNGP (last layer only).
    depth : int or math.inf, default=3
        Number of hidden layers L.
    ridge : float, default=0.0
        Ridge added to the diagonal of the normalized Gram matrix (k(x, x) = 1); 0 is
        interpolation (the network trained to zero loss).
    projection : "auto", None or transformer, default="auto"
        "auto" fits a :class:`SphereProjection`; None means the rows are already unit
        vectors (checked to 1e-6 and renormalized); a transformer is cloned, fitted, and
        its output normalized.
    activation_params : dict or None, default=None
        Parameters for a built-in activation, e.g. ``{"a": 2.676}`` for "sine_family".
    dtype, device
        See :class:`~infdepth.kernels.Kernel`.
    architecture : {"mlp", "resnet"}, default="mlp"
        ``"resnet"``: the residual network of docs/resnet.md, branches scaled by
        L^-branch_exponent. At every depth, including ``math.inf`` with
        branch_exponent >= 1/2 (the depth-time ODE kernel; > 1/2: the input kernel), the
        rule is kernel interpolation with its normalized kernel. Below 1/2 the infinitely
        deep ResNet degenerates: the ReLU family gives the majority vote, other
        activations raise; finite depths then use the complement coordinates (the Gram
        matrix tends to J).
    branch_exponent : float, default=0.5
        gamma >= 0 in beta_L = L^-gamma (ResNet only).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray, only when X has feature names
    projection_ : fitted transformer or None
    X_fit_ : ndarray (n_samples, n_dims)
        Training points on the sphere, sorted by class.
    y_fit_ : ndarray of int
        Class indices of ``X_fit_``.
    attractor_ : str
        Kind of the dual's attracting fixed point (see the table); "resnet" for ResNets.
    rule_ : str
        At finite depth "interpolation", or "complement" (the same interpolation solved in
        complement coordinates 1 - k, used when the kernel tends to 1 with depth: ReLU
        family and softplus); at depth infinity the taxonomy's kind
        (``infdepth.limit(activation).kind``): "singular", "nearest_neighbor",
        "majority_vote" or "psi_interpolation" (see :data:`RULES`).
    dual_coef_ : ndarray (n_samples, n_classes) or None
        Interpolation coefficients (finite depth, and the psi rule).
    intercept_ : ndarray (n_classes,) or None
        Constant term of the complement-coordinate and psi interpolants.
    solver_ : str or None
        "cholesky" or "eigh" (the pseudo-inverse fallback), None for the direct rules.
    n_discarded_ : int
        Eigen-directions dropped by the fallback (0 with Cholesky).

    Examples
    --------
    >>> import math
    >>> from sklearn.datasets import load_iris
    >>> from infdepth.estimators import InfiniteNetworkClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf).fit(X, y)
    >>> clf.rule_
    'singular'
    >>> float(clf.score(X, y))
    1.0
    """

    def __init__(self, activation="relu", kernel="ntk", depth=3, ridge=0.0, projection="auto",
                 activation_params=None, dtype="float64", device=None, architecture="mlp",
                 branch_exponent=0.5):
        self.activation = activation
        self.kernel = kernel
        self.depth = depth
        self.ridge = ridge
        self.projection = projection
        self.activation_params = activation_params
        self.dtype = dtype
        self.device = device
        self.architecture = architecture
        self.branch_exponent = branch_exponent

    # ------------------------------------------------------------------ parameters
    def _activation(self) -> Activation:
        shipped = getattr(self, "_cache", {}).get("activation")
        if shipped is not None:  # installed by infdepth.distributed on a worker
            return shipped
        params = self.activation_params or {}
        if isinstance(self.activation, Activation):
            if params:
                raise ValueError("activation_params cannot be used with an Activation instance")
            return self.activation
        if not isinstance(self.activation, str):
            raise ValueError(not_an_activation(self.activation))
        return _activation(self.activation, **params)

    def _check_params(self):
        if self.kernel not in ("ntk", "nngp"):
            raise ValueError(f"kernel must be 'ntk' or 'nngp', got {self.kernel!r}")
        depth = check_depth(self.depth)
        ridge = self.ridge
        if isinstance(ridge, bool) or not isinstance(ridge, numbers.Real) or not (
            math.isfinite(ridge) and ridge >= 0
        ):
            raise ValueError(f"ridge must be a non-negative finite number, got {ridge!r}")
        return self._activation(), depth, float(ridge)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit on X (n_samples, n_features) and labels y of any type (at least 2 classes)."""
        with _quiet():
            return self._fit(X, y)

    def _fit(self, X, y):
        act, depth, ridge = self._check_params()
        from .resnet import check_architecture, check_branch_exponent

        if check_architecture(self.architecture) == "resnet":
            return self._fit_resnet(X, y, act, depth, ridge,
                                    check_branch_exponent(self.branch_exponent))
        attractor = find_attractor(check_informative(act).dual_function)
        gram = (depth if attractor.kind != "identity" else min(depth, 1)) < math.inf or (
            attractor.kind == "one" and ridge == 0)
        if gram:  # before anything is fitted or built
            try:
                n = _num_samples(X)
            except TypeError:  # not array-like: validate_data says so below
                n = 0
            _check_fit_memory(n, "the psi interpolation" if depth == math.inf
                              else f"a depth-{depth} fit")
        self._fit_common(X, y)
        self.attractor_ = attractor.kind
        self.dual_coef_ = self.intercept_ = self.solver_ = None
        self.n_discarded_ = 0
        self._log_scale = 0.0
        self._ridge = ridge
        kind = attractor.kind
        if kind == "identity":
            depth = min(depth, 1)  # the kernel is xi at every depth
        if depth == math.inf:
            if kind == "zero":
                self.rule_ = "singular"
            elif kind == "superattracting_zero":
                self.rule_ = "nearest_neighbor"
            elif kind in ("interior", "parabolic") or (kind == "one" and ridge > 0):
                self.rule_ = "majority_vote"
            else:  # "one"
                self.rule_ = "psi_interpolation"
                self._fit_complement(kernel_function(act, self.kernel, math.inf), 0.0,
                                     infinite=True)
            return self
        fn = kernel_function(act, self.kernel, depth)
        if kind in ("one", "parabolic"):
            self.rule_ = "complement"
            self._fit_complement(fn, ridge, infinite=False)
        else:
            self.rule_ = "interpolation"
            self._fit_interpolation(fn, ridge)
        return self

    def _fit_resnet(self, X, y, act, depth, ridge, gamma):
        """ResNet: kernel interpolation at any depth where the limit is a kernel."""
        from .resnet import resnet_limit

        degenerate = depth == math.inf and gamma < 0.5
        if degenerate:
            record = resnet_limit(act, gamma)
            if "majority" not in record.rule:
                raise ValueError(record.message)
        else:
            try:
                n = _num_samples(X)
            except TypeError:
                n = 0
            _check_fit_memory(n, f"a depth-{depth} ResNet fit")
        self._fit_common(X, y)
        self.attractor_ = "resnet"
        self.dual_coef_ = self.intercept_ = self.solver_ = None
        self.n_discarded_ = 0
        self._log_scale = 0.0
        self._ridge = ridge
        if degenerate:
            self.rule_ = "majority_vote"
            return self
        fn = self._function(depth)
        if gamma < 0.5:
            self.rule_ = "complement"
            self._fit_complement(fn, ridge, infinite=False)
        else:
            self.rule_ = "interpolation"
            self._fit_interpolation(fn, ridge)
        return self

    def _train_pairs(self):
        X = self.X_fit_
        return _geometry(X, X, self._train_T())

    def _fit_interpolation(self, fn, ridge):
        sign, logabs = fn.log(*self._train_pairs())
        with np.errstate(under="ignore"):
            K = sign * np.exp(logabs)
        K = (K + K.T) / 2
        K[np.diag_indices_from(K)] += ridge
        self.dual_coef_, self.solver_, self.n_discarded_ = _spd_solve(
            K, self._onehot(), f"depth-{self.depth} {self.kernel.upper()} Gram matrix"
        )

    def _fit_complement(self, fn, ridge, infinite):
        log_e = fn.log_complement(*self._train_pairs())
        log_e = np.minimum(log_e, log_e.T)  # symmetric; exact zeros on the diagonal
        np.fill_diagonal(log_e, -np.inf)
        top = float(np.max(log_e))
        if ridge > 0:
            top = max(top, math.log(ridge))
        if not np.isfinite(top):  # every training point is the same point
            top = 0.0
        with np.errstate(under="ignore"):
            E = np.exp(log_e - top)
        if ridge > 0:
            E[np.diag_indices_from(E)] -= math.exp(math.log(ridge) - top)
        t = 0.0 if infinite else math.exp(top)
        c0, beta, self.solver_, self.n_discarded_ = _complement_solve(E, self._onehot(), t)
        self._log_scale = top
        self.intercept_, self.dual_coef_ = c0, beta

    # ------------------------------------------------------------------ predict
    def _function(self, depth=None):
        depth = check_depth(self.depth) if depth is None else depth
        if self.attractor_ == "identity":
            depth = min(depth, 1)
        if self.attractor_ == "resnet":
            return kernel_function(self._activation(), self.kernel, depth,
                                   architecture="resnet", branch_exponent=self.branch_exponent)
        return kernel_function(self._activation(), self.kernel, depth)

    def _kernel_table_key(self):
        if self.rule_ in ("majority_vote", "nearest_neighbor") or self.attractor_ == "resnet":
            return None  # ResNet tables are rebuilt after unpickling
        depth = (math.inf if self.rule_ in ("singular", "psi_interpolation")
                 else check_depth(self.depth))
        if self.attractor_ == "identity":
            depth = min(depth, 1)
        return (self.kernel, depth)

    def _block_rows(self, n_train):
        if self.rule_ == "majority_vote":
            return 1 << 16
        if self.rule_ == "singular" and self.device is None and _kernels() is not None and (
                n_train >= FAST_MIN_TRAIN or self.dtype == "float32"):
            return 4096  # the compiled pass keeps no block-sized temporaries
        return _row_block(n_train)

    def _outputs_block(self, Q):
        rule = self.rule_
        if rule == "majority_vote":
            return self._majority(Q)
        if rule == "singular":
            fn = self._function(math.inf)
            weights = _Weights(fn.log, self._activation().dual_function.parity,
                               ("h", self.kernel))
            return self._vote_outputs(Q, weights)
        if rule == "nearest_neighbor":
            return self._nearest(Q)
        xi, delta, eps = _geometry(Q, self.X_fit_, self._train_T())
        if rule == "interpolation":
            fn = self._function()
            sign, logabs = fn.log(xi, delta, eps)
            top = np.max(logabs, axis=1, initial=-np.inf)
            dead = ~np.isfinite(top)
            top = np.where(dead, 0.0, top)
            with np.errstate(under="ignore"):
                W = sign * np.exp(logabs - top[:, None])
            f = _class_sums(W, self.dual_coef_)
            if np.any(dead) and self.attractor_ == "superattracting_zero":
                # every kernel value underflows even in log form: the network is at its
                # depth-infinity limit to all representable precision
                f[dead] = self._nearest(Q[dead])
            return f
        fn = self._function(math.inf if rule == "psi_interpolation" else None)
        with np.errstate(under="ignore"):
            e = np.exp(fn.log_complement(xi, delta, eps) - self._log_scale)
        f = self.intercept_[None, :] - _class_sums(e, self.dual_coef_)
        if rule == "psi_interpolation":  # exact coincidences: the interpolated labels, exactly
            hit = delta == 0
            if self._activation().dual_function.parity == 1:
                hit |= eps == 0
            rows = np.flatnonzero(np.any(hit, axis=1))
            if rows.size:
                f[rows] = _segment_sums(hit[rows].astype(float), self._seg) / np.count_nonzero(
                    hit[rows], axis=1)[:, None]
        return f

    def _nearest(self, Q):
        """1-NN (depth-infinity limit for dual(0) = dual'(0) = 0), ties averaged."""
        parity = self._activation().dual_function.parity
        xi, delta, eps = _geometry(Q, self.X_fit_, self._train_T())
        if parity == 0:
            dist, sign = delta, np.ones_like(delta)
        else:
            dist = np.minimum(delta, eps)
            sign = np.where((eps < delta) & (parity == -1), -1.0, 1.0)
        best = np.min(dist, axis=1, keepdims=True)
        tie = dist == best
        f = _segment_sums(np.where(tie, sign, 0.0), self._seg)
        return f / np.count_nonzero(tie, axis=1)[:, None]

    def _majority(self, Q):
        counts = np.diff(self._seg).astype(float)
        f = np.tile(counts / counts.sum(), (Q.shape[0], 1))
        if self._ridge > 0:  # see the class docstring: no exact-coincidence exception
            return f
        table = self._cache.get("rows")
        if table is None:  # cached only once complete (an interrupt leaves no partial table)
            table = {}
            for j, row in enumerate(self.X_fit_ + 0.0):  # + 0.0 merges -0.0 with 0.0
                table.setdefault(row.tobytes(), []).append(j)
            self._cache["rows"] = table
        parity = self._activation().dual_function.parity
        for i, q in enumerate(Q + 0.0):
            hits = [(j, 1.0) for j in table.get(q.tobytes(), ())]
            if parity != 0:
                hits += [(j, float(parity)) for j in table.get((-q + 0.0).tobytes(), ())]
            if hits:
                out = np.zeros(self.classes_.size)
                for j, s in hits:
                    out[self.y_fit_[j]] += s
                f[i] = out / len(hits)
        return f


# =========================================================================== Hilbert rule
class SingularKernelClassifier(_SphereClassifier):
    """The Hilbert kernel rule: weights ``||x - x_i||^(-alpha)`` on the sphere.

    ``predict`` takes the class with the largest total weight; ``predict_proba`` is the
    normalized weight of each class, ``sum_{i in c} w_i / sum_i w_i``, computed in the log
    domain (no overflow for any alpha). A test point equal to training points gets the
    mean of their one-hot labels (the weight is infinite there), computed exactly. With
    ``alpha`` equal to the dimension of the data's support the rule is consistent
    (Devroye, Györfi, Krzyżak 1998), the limit of suitably designed infinitely deep
    networks (docs/theory.md section 5).

    Parameters
    ----------
    alpha : float or "auto", default="auto"
        The exponent. "auto" uses the intrinsic dimension of the training data on the
        sphere estimated by scikit-dimension's TwoNN (``pip install scikit-dimension``),
        on at most ``max_id_samples`` distinct points.
    projection : "auto", None or transformer, default="auto"
        As for :class:`InfiniteNetworkClassifier`.
    max_id_samples : int, default=5000
    random_state : int, RandomState or None, default=None
        Subsampling for the intrinsic-dimension estimate.

    Attributes
    ----------
    alpha_ : float
        The exponent used.
    intrinsic_dimension_ : float or None
        The TwoNN estimate when ``alpha="auto"``.
    classes_, n_features_in_, projection_, X_fit_, y_fit_ : as for
        :class:`InfiniteNetworkClassifier`.
    """

    def __init__(self, alpha="auto", projection="auto", max_id_samples=5000, random_state=None,
                 dtype="float64", device=None):
        self.alpha = alpha
        self.projection = projection
        self.max_id_samples = max_id_samples
        self.random_state = random_state
        self.dtype = dtype
        self.device = device

    def fit(self, X, y):
        """Store the training set and choose alpha."""
        alpha = self.alpha
        if isinstance(alpha, str):
            if alpha != "auto":
                raise ValueError(f"alpha must be a positive number or 'auto', got {alpha!r}")
        elif isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (
            math.isfinite(alpha) and alpha > 0
        ):
            raise ValueError(f"alpha must be a positive finite number or 'auto', got {alpha!r}")
        self._fit_common(X, y)
        self.intrinsic_dimension_ = None
        if alpha == "auto":
            self.intrinsic_dimension_ = _intrinsic_dimension(
                self.X_fit_, self.max_id_samples, self.random_state
            )
            alpha = self.intrinsic_dimension_
        self.alpha_ = float(alpha)
        self.rule_ = "hilbert"
        return self

    def _block_rows(self, n_train):
        if self.device is None and _kernels() is not None and (
                n_train >= FAST_MIN_TRAIN or self.dtype == "float32"):
            return 4096  # the compiled pass keeps no block-sized temporaries
        return _row_block(n_train)

    def _outputs_block(self, Q):
        half = self.alpha_ / 2

        def log_weight(xi, delta, eps):
            with np.errstate(divide="ignore"):
                return np.ones_like(delta), -half * np.log(2.0 * delta)

        return self._vote_outputs(Q, _Weights(log_weight, 0, ("hilbert", self.alpha_)))


def _intrinsic_dimension(X, max_samples, random_state) -> float:
    try:
        import skdim
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "alpha='auto' estimates the intrinsic dimension with scikit-dimension: "
            "pip install scikit-dimension (or infdepth[dimension]), or give alpha explicitly"
        ) from exc
    from sklearn.utils import check_random_state

    points = np.unique(X, axis=0)
    if isinstance(max_samples, bool) or not isinstance(max_samples, numbers.Integral) or (
        max_samples < 3
    ):
        raise ValueError(f"max_id_samples must be an integer >= 3, got {max_samples!r}")
    if points.shape[0] > max_samples:
        rng = check_random_state(random_state)
        points = points[rng.choice(points.shape[0], max_samples, replace=False)]
    fallback = float(max(X.shape[1] - 1, 1))
    if points.shape[0] < 3:
        return fallback
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            dim = float(skdim.id.TwoNN().fit(points).dimension_)
        except Exception:  # noqa: BLE001 - degenerate samples: fall back below
            dim = float("nan")
    if not (math.isfinite(dim) and dim > 0):
        return fallback
    return dim
