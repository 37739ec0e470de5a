"""Iterative kernel regression: (K + ridge I) A = Y without forming the n x n matrix.

The solver sees a *Gram operator*: an object with ``n`` (number of training points),
``ridge``, ``matvec(V)`` (``(K + ridge I) V`` computed in tiles of K's upper block
triangle, each tile made by the engine and dropped after its two products) and
``block(rows, cols)`` (the entries ``K[rows][:, cols]`` without the ridge). Two operators
are provided: :class:`GramOperator` (numpy/numba on every CPU core, or a torch device
through :class:`~infdepth.kernels.Kernel`'s ``device``) and :class:`DaskGramOperator`
(each row block of the triangle is a task on a ``dask.distributed`` cluster; the
iteration stays on the client).

Method (one for ridge = 0 and ridge > 0): conjugate gradients preconditioned by a
rank-s eigensystem ``K ~ U diag(lam) U^T``, the top s eigenpairs of the Nystrom
approximation from m = 2s columns sampled at random (Frangella, Tropp & Udell 2021; the
preconditioner of Falkon, the eigensystem of EigenPro):

    P^{-1} = U diag((lam_s + ridge) / (lam + ridge)) U^T + (I - U U^T).

P^{-1} (K + ridge I) has its top s eigenvalues flattened to about 1, the rest in
(0, ~1]. ``method="richardson"`` is EigenPro's iteration with the same eigensystem,
``A <- A - eta P^{-1} (K A + ridge A - Y)``, eta = 1 / top of P^{-1} K; kept for comparison.
Measured (n = 2000 random points on S^39, 10 classes, relu NTK depth 3 and erf NNGP
depth 10, ridge = 0, tol 1e-6, rank 300): CG took 17 and 12 epochs, Richardson (its step
from three power steps) 50 and 26, to reach the same training residual: for interpolation
the small eigenvalues of K (below lam_s)
govern convergence and CG's rate depends on the square root of their ratio, Richardson's
on the ratio itself. So CG is the default for both ridge = 0 and ridge > 0.

Stopping rule: ``max_c ||K a_c + ridge a_c - y_c|| / ||y_c|| <= tol`` on the true training
residual (recomputed at the end); otherwise a
:class:`sklearn.exceptions.ConvergenceWarning`. A stopped solution differs from the exact
one by ``K^{-1} r``, so at any point x with k(x, x) = 1 an output moves by at most
``||r|| / sqrt(lambda_min(K + ridge I))`` (since k(x)^T K^{-1} k(x) <= 1).

Memory: O(n (d + s + c)) floats (the data, the Nystrom basis, a few n x c iterates) plus
at most four tiles of ``block_entries`` kernel values per thread (and, while the basis
is built, three m x m matrices and one chunk of K's sampled columns); time per epoch: one
pass over the upper block triangle of K, n^2 / 2 entries (one matrix product and one table
read per entry), on every core.

Precision: ``Kernel(dtype="float32")`` computes the inner products in float32, so the
kernel values carry errors of about 1e-7 (docs/api.md "Precision"): one fixed
perturbation dK of K, which the iteration solves as accurately as K itself (the operator
writes the values in float64 and accumulates its products in float64; float32 products
would stall CG near eps32 cond(K)). The solution then differs from the float64 one by
about K^{-1} dK A.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import gen_batches

#: Kernel entries per block of a pass: square tiles of 1024 x 1024 (4-8 MiB, in cache).
BLOCK_ENTRIES = 1 << 20
#: The default Nystrom rank, and the most memory its basis may take (:func:`auto_rank`).
#: Dot-product kernels on S^{d-1} have eigenvalue plateaus of sizes 1, d, ~d^2 / 2 (the
#: spherical harmonics): s must pass the first few to help. Measured at n = 3 x 10^4 on
#: S^39 (relu NTK depth 3, tol 1e-6): s = 500, 1000, 2000 took 45, 43, 29 epochs.
AUTO_RANK = 2000
AUTO_RANK_BYTES = 1 << 32
#: Columns sampled per kept Nystrom direction (:meth:`NystromPreconditioner.build`).
OVERSAMPLE = 2.0
#: Entries of one row chunk of K[:, S] in the Nystrom build (64 MiB of float64).
NYSTROM_CHUNK_ENTRIES = 1 << 23

__all__ = ["AUTO_RANK", "BLOCK_ENTRIES", "DaskGramOperator", "GramOperator", "IterativeResult",
           "NystromPreconditioner", "auto_rank", "solve"]


def _check_block_entries(block_entries) -> int:
    if isinstance(block_entries, bool) or not (
            isinstance(block_entries, int | np.integer) and block_entries >= 1):
        raise ValueError(f"block_entries must be a positive integer, got {block_entries!r}")
    return int(block_entries)


def _unit_rows(X: Any) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    return X


def _check_number(value: Any, name: str, lower: float, wording: str, *,
                  strict: bool = False) -> float:
    """``value`` as a float if it is a finite real >= ``lower`` (> if ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating) or not (
            math.isfinite(value) and (value > lower if strict else value >= lower)):
        raise ValueError(f"{name} must be {wording}, got {value!r}")
    return float(value)


def _check_ridge(ridge: Any) -> float:
    return _check_number(ridge, "ridge", 0.0, "a non-negative finite number")


# =========================================================================== operators
class GramOperator:
    """``K + ridge I`` for ``K = kernel(X, X)``, applied in blocks, never stored.

    One pass (:meth:`matvec`) computes the upper block triangle of K only: row block I
    with columns from I's first row on, ``K[I, I:]``, gives ``K[I, I:] V[I:]`` to rows I
    and ``K[I, I+b:]^T V[I]`` to the rows below (K is symmetric), so each kernel entry
    off the diagonal blocks is made once per pass, not twice. Blocks run on ``n_jobs``
    threads (the engine's compiled pass releases the GIL; BLAS is held to one thread
    per block meanwhile, so the threads do not contend).

    Parameters
    ----------
    kernel : callable ``(A, B) -> ndarray``
        Usually :class:`infdepth.kernels.Kernel` (its ``dtype`` and ``device`` choose
        float32 blocks and a torch device such as ``"cuda"``); any symmetric kernel
        callable works.
    X : ndarray (n, d)
        Training points (unit rows for :class:`~infdepth.kernels.Kernel`).
    ridge : float
        Added to the diagonal in :meth:`matvec` (not in :meth:`block`).
    block_entries : int
        Kernel entries per block (memory of one pass: 8 bytes each, per thread).
    n_jobs : int or None
        Threads of a pass; None: every CPU this process may use. 1: blocks in turn, with
        BLAS's own threads.
    """

    def __init__(self, kernel, X, ridge: float = 0.0, *, block_entries: int = BLOCK_ENTRIES,
                 n_jobs: int | None = None):
        self.kernel = kernel
        self.X = _unit_rows(X)
        self.ridge = _check_ridge(ridge)
        self.n = self.X.shape[0]
        self.block_entries = _check_block_entries(block_entries)
        self.tile = max(1, min(self.n, math.isqrt(self.block_entries)))
        self.n_jobs = _check_n_jobs(n_jobs)
        self._pass = _BlockPass.of(kernel, self.X)

    def triangle_slices(self) -> list[slice]:
        """Row blocks of the pass, ``tile`` rows each; block I is made in square tiles of
        about ``block_entries`` entries, from its diagonal tile to the last column."""
        return list(gen_batches(self.n, self.tile))

    def block(self, rows, cols) -> np.ndarray:
        """``K[rows][:, cols]`` (index arrays or slices), float64, without the ridge."""
        return np.asarray(self._pass.gram(rows, cols), dtype=np.float64)

    def matvec(self, V: np.ndarray) -> np.ndarray:
        """``(K + ridge I) V`` for V of shape (n,) or (n, c): one pass over K's upper
        block triangle."""
        V = np.asarray(V, dtype=np.float64)
        if V.shape[0] != self.n:
            raise ValueError(f"V has {V.shape[0]} rows, the operator {self.n}")
        out = np.zeros_like(V)
        for rows, local, below in self._block_results(V.astype(self._pass.dtype, copy=False)):
            out[rows] += local
            out[rows.stop:] += below
        if self.ridge:
            out += self.ridge * V
        return out

    def _block_results(self, V: np.ndarray):
        """``(rows, K[I, I:] V[I:], K[I, I+h:]^T V[I])`` of every row block, in any order."""
        return _run_blocks(self._pass, self.triangle_slices(), V, self.tile, self.n_jobs)


def _row_chunks(n: int, width: int, entries: int = 1 << 20):
    """Row slices of an n x ``width`` array, about ``entries`` entries each."""
    return gen_batches(n, max(1, entries // max(width, 1)))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def _check_n_jobs(n_jobs) -> int:
    if n_jobs is None:
        return usable_cpus()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    return int(n_jobs)


@dataclass
class _BlockPass:
    """What a block of the pass needs: the kernel, X, and X cast to the kernel's dtype.

    A :class:`~infdepth.kernels.Kernel` is called through ``gram_of_unit_rows`` (rows
    checked once here, not per block), its values written in float64 whatever its dtype:
    products with V then accumulate in float64. That matters: CG's attainable residual is
    about the products' rounding error times cond(K), so float32 products stall it (at
    n = 10^5, relu NTK depth 3: 8e-4 instead of 1e-5), while float32 *values* (inner
    products) are one fixed perturbation of K, which the iteration solves exactly. Any
    other callable is called as ``kernel(A, B)`` and its products are in its own dtype.
    """

    kernel: Any
    X: np.ndarray
    Xw: np.ndarray
    dtype: np.dtype
    fast: bool

    @classmethod
    def of(cls, kernel, X: np.ndarray) -> _BlockPass:
        from ..kernels import Kernel

        if isinstance(kernel, Kernel) and math.isfinite(float(kernel.depth)):
            kernel(X[:1], X[:1])  # validates the kernel once (activation, depth, dtype)
            return cls(kernel, X, X.astype(kernel.dtype, copy=False), np.dtype(np.float64),
                       True)
        return cls(kernel, X, X, np.asarray(kernel(X[:1], X[:1])).dtype, False)

    @property
    def function(self):
        """The Kernel's KernelFunction, looked up once per process (not per tile); not
        pickled (its duals hold lambdas): a Dask worker looks it up again."""
        fn = self.__dict__.get("_function")
        if fn is None:
            fn = self.__dict__["_function"] = self.kernel.function
        return fn

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_function"}

    def gram(self, rows, cols) -> np.ndarray:
        if not self.fast:
            return np.asarray(self.kernel(self.X[rows], self.X[cols]))
        return self.kernel.gram_of_unit_rows(self.X[rows], self.X[cols], fn=self.function,
                                             Xw=self.Xw[rows], Zw=self.Xw[cols],
                                             out_dtype=np.float64)

    def triangle_products(self, rows: slice, V: np.ndarray, width: int):
        """``(K[I, I:] V[I:], K[I, I+h:]^T V[I])`` for the row block I = ``rows`` (height
        h), K made in tiles of ``width`` columns: the diagonal tile, then the rest. Sums
        over tiles are float64 (a float32 tile's product is summed over its width only).
        """
        n, c = V.shape[0], V.shape[1:]
        local = (self.gram(rows, rows) @ V[rows]).astype(np.float64)
        below = np.empty((n - rows.stop, *c))
        for a in range(rows.stop, n, width):
            cols = slice(a, min(a + width, n))
            Kt = self.gram(rows, cols)
            local += Kt @ V[cols]
            # K^T V as (V^T K)^T: OpenBLAS's skinny product with a transposed K takes
            # 1.4-1.9x as long (1024 x 1024 tile, c = 10, one core: 1.22-1.63 ms vs 0.86)
            below[a - rows.stop:cols.stop - rows.stop] = (V[rows].T @ Kt).T
        return rows, local, below


def _run_blocks(block_pass: _BlockPass, slices: list[slice], V: np.ndarray, width: int,
                n_jobs: int):
    """The triangle products of every row block, on ``n_jobs`` threads (BLAS on one
    thread each meanwhile), at most 2 n_jobs blocks in flight: memory stays bounded."""
    if n_jobs == 1 or len(slices) == 1:
        for rows in slices:
            yield block_pass.triangle_products(rows, V, width)
        return
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_jobs) as pool:
        pending = []
        for rows in slices:
            pending.append(pool.submit(block_pass.triangle_products, rows, V, width))
            if len(pending) >= 2 * n_jobs:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def _dask_block_product(block_pass: _BlockPass, start: int, stop: int, V: np.ndarray,
                        width: int):
    return block_pass.triangle_products(slice(start, stop), V, width)


class DaskGramOperator(GramOperator):
    """:class:`GramOperator` whose blocks are tasks on a Dask cluster.

    X is scattered to every worker once; each :meth:`matvec` scatters V and submits one
    task per block of the upper triangle (computed on the worker; only the n x c
    products come back). The kernel must be picklable (:class:`~infdepth.kernels.Kernel`
    with an activation name is).

    Parameters
    ----------
    client : dask.distributed.Client
    kernel, X, ridge, block_entries : see :class:`GramOperator`.
    """

    def __init__(self, client, kernel, X, ridge: float = 0.0, *,
                 block_entries: int = BLOCK_ENTRIES):
        super().__init__(kernel, X, ridge, block_entries=block_entries, n_jobs=1)
        self.client = client
        self._pass_remote = client.scatter(self._pass, broadcast=True, hash=False)

    def _block_results(self, V: np.ndarray):
        from dask.distributed import as_completed

        V_remote = self.client.scatter(V, broadcast=True, hash=False)
        futures = [self.client.submit(_dask_block_product, self._pass_remote, s.start,
                                      s.stop, V_remote, self.tile, pure=False)
                   for s in self.triangle_slices()]
        for future in as_completed(futures):  # each result added by matvec, then dropped
            yield future.result()


# =========================================================================== preconditioner
@dataclass
class NystromPreconditioner:
    """Rank-s Nystrom eigensystem ``K ~ U diag(lam) U^T`` and the preconditioner it gives.

    ``apply(R) = U diag((lam_s + mu) / (lam + mu)) U^T R + (R - U U^T R)``, mu the ridge;
    lam_s the smallest kept eigenvalue. Memory n s floats.
    """

    U: np.ndarray
    lam: np.ndarray
    mu: float

    @classmethod
    def build(cls, op, s: int, random_state=None, *,
              oversample: float = OVERSAMPLE) -> NystromPreconditioner:
        """The top s eigenpairs of the Nystrom approximation from m = ``oversample`` s
        columns of K sampled without replacement.

        With W = K[S, S] + nu I = L L^T (nu a tiny shift for stability) and
        F = K[:, S] L^{-T} (so F F^T = K[:, S] W^{-1} K[S, :]), the eigensystem
        F^T F = V Sigma^2 V^T gives U = F V_s Sigma_s^{-1} and lam = Sigma_s^2 - nu for
        the s largest. Two streaming passes over row chunks of K[:, S]: the first
        accumulates F^T F (m x m), the second recomputes each chunk of F and writes its
        rows of U; memory n s + O(m^2) floats, never n x m.

        Why m > s: the top s eigenpairs of a rank-m Nystrom approximation are much
        closer to K's than those of a rank-s one. Measured on mnist1d, n = 10^4, relu
        NTK depth 3, tol 1e-6 (dense K, to isolate the preconditioner): s = 2000 took 24
        epochs from m = 2000 columns, 16 from m = 4000 (keeping all 4000: 20).
        Directions with lam below 1e-10 of the top are dropped (in F^T F they carry
        relative errors of about eps / 1e-10).
        """
        n = op.n
        s = int(min(s, n))
        m = int(min(n, max(s, math.ceil(oversample * s))))
        rng = np.random.default_rng(random_state)
        S = np.sort(rng.choice(n, size=m, replace=False))
        W = op.block(S, S)
        W = (W + W.T) / 2
        nu = np.finfo(float).eps * max(np.trace(W), 1.0) * m
        L = scipy.linalg.cholesky(W + nu * np.eye(m), lower=True, check_finite=False)
        del W

        def f_chunks():  # (rows, F[rows]^T): L^-1 K[S, rows], computed in place
            for rows in _row_chunks(n, m, NYSTROM_CHUNK_ENTRIES):
                Ft = scipy.linalg.blas.dtrsm(1.0, L, op.block(rows, S).T, lower=1,
                                             overwrite_b=1)
                yield rows, Ft

        G = np.zeros((m, m), order="F")
        for _, Ft in f_chunks():  # G += F_r^T F_r (upper triangle)
            G = scipy.linalg.blas.dsyrk(1.0, Ft, beta=1.0, c=G, overwrite_c=1)
        sigma2, V = scipy.linalg.eigh(G, lower=False, overwrite_a=True,  # dsyrk's upper
                                      check_finite=False)  # triangle; all m eigenpairs:
        del G  # LAPACK's divide and conquer beats the subset driver (4.7 s vs 9 s, m = 4000)
        sigma2, V = sigma2[:-s - 1:-1], V[:, :-s - 1:-1]
        lam = sigma2 - nu
        keep = lam > max(lam[0], 0.0) * 1e-10 if lam.size else lam > 0
        k = int(np.count_nonzero(keep))
        Vk = V[:, :k] / np.sqrt(sigma2[:k])
        U = np.empty((n, k))
        for rows, Ft in f_chunks():
            U[rows] = Ft.T @ Vk
        return cls(U, lam[:k], float(op.ridge))

    @property
    def floor(self) -> float:
        """lam_s + mu: the eigenvalue the top of the spectrum is flattened to."""
        return (float(self.lam[-1]) if self.lam.size else 0.0) + self.mu

    def apply(self, R: np.ndarray) -> np.ndarray:
        if self.lam.size == 0:
            return R.copy()
        UR = self.U.T @ R
        scale = self.floor / (self.lam + self.mu) - 1.0
        return R + self.U @ (scale[:, None] * UR if R.ndim == 2 else scale * UR)


# =========================================================================== the solver
@dataclass
class IterativeResult:
    """Coefficients A of (K + ridge I) A = Y and the convergence record."""

    coef: np.ndarray
    converged: bool
    n_epochs: int
    residual: float
    history: list[float] = field(default_factory=list)
    seconds: float = 0.0
    method: str = "cg"


def _progress(total: int, show: bool):
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, desc="epochs", leave=False, dynamic_ncols=True)


def auto_rank(n: int) -> int:
    """The default Nystrom rank: min(``AUTO_RANK``, n / 4, ``AUTO_RANK_BYTES`` / (8 n))."""
    return max(1, min(AUTO_RANK, n // 4, AUTO_RANK_BYTES // (8 * max(n, 1))))


def solve(op, Y, *, tol: float = 1e-6, max_iter: int = 200, rank: int | str = "auto",
          oversample: float = OVERSAMPLE, method: str = "cg", random_state=0,
          verbose: int = 0, progress: bool = False,
          preconditioner: NystromPreconditioner | None = None) -> IterativeResult:
    """Solve ``(K + ridge I) A = Y`` by Nystrom-preconditioned CG (or EigenPro's iteration).

    Parameters
    ----------
    op : Gram operator (``n``, ``ridge``, ``matvec``, ``block``)
    Y : ndarray (n,) or (n, c)
    tol : float
        Stop when ``max_c ||r_c|| / ||y_c|| <= tol`` (r the training residual).
    max_iter : int
        Most epochs (passes over K) of the iteration.
    rank : int or "auto"
        s, the Nystrom rank (columns sampled; memory n s floats); 0: no preconditioner;
        "auto": :func:`auto_rank` (2000 up to n = 2.7 x 10^5, then a 4 GiB basis).
    oversample : float >= 1
        Columns sampled per kept direction: the basis is the top ``rank`` eigenpairs
        of a Nystrom approximation from ``oversample * rank`` columns.
    method : {"cg", "richardson"}
        Conjugate gradients, or EigenPro's preconditioned Richardson iteration.
    verbose : int
        > 0: one line per epoch (residual, seconds) on stdout.
    progress : bool
        A tqdm bar over epochs (if tqdm is installed).

    Returns
    -------
    IterativeResult
        ``coef`` shaped like Y; ``residual`` the true relative residual at the end.
        A :class:`~sklearn.exceptions.ConvergenceWarning` if it is above ``tol``.
    """
    if method not in ("cg", "richardson"):
        raise ValueError(f"method must be 'cg' or 'richardson', got {method!r}")
    _check_number(tol, "tol", 0.0, "a positive finite number", strict=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(rank, str) and rank == "auto":
        rank = auto_rank(op.n)
    if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or rank < 0:
        raise ValueError(f"rank must be a non-negative integer or 'auto', got {rank!r}")
    _check_number(oversample, "oversample", 1.0, "a finite number >= 1")
    Y = np.asarray(Y, dtype=np.float64)
    vector = Y.ndim == 1
    Y2 = Y[:, None] if vector else Y
    if Y2.ndim != 2 or Y2.shape[0] != op.n:
        raise ValueError(f"Y must have {op.n} rows (the operator's n), got shape {Y.shape}")
    if not np.all(np.isfinite(Y2)):
        raise ValueError("Y contains NaN or infinity")
    start = time.perf_counter()
    P = preconditioner
    if P is None and rank > 0:
        P = NystromPreconditioner.build(op, rank, random_state, oversample=oversample)
        if verbose:
            print(f"[infdepth.solvers] Nystrom preconditioner: {P.lam.size} directions "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
    apply = P.apply if P is not None else (lambda R: R.copy())
    norms = np.linalg.norm(Y2, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    A = np.zeros_like(Y2)
    R = Y2.copy()
    history: list[float] = []
    bar = _progress(max_iter, progress)
    step = None
    Z = apply(R)
    Pd = Z.copy()
    rz = np.einsum("ij,ij->j", R, Z)
    epochs = 0
    rel = float(np.max(np.linalg.norm(R, axis=0) / norms))
    try:
        while epochs < max_iter and rel > tol:
            if method == "cg":
                AP = op.matvec(Pd)
                pap = np.einsum("ij,ij->j", Pd, AP)
                a = np.divide(rz, pap, out=np.zeros_like(rz), where=pap > 0)
                A += Pd * a
                R -= AP * a
                Z = apply(R)
                rz_new = np.einsum("ij,ij->j", R, Z)
                b = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
                Pd = Z + Pd * b
                rz = rz_new
            else:
                if step is None:  # top of P^{-1} K by 3 power steps (3 more epochs)
                    v = np.random.default_rng(random_state).standard_normal(op.n)
                    for _ in range(3):
                        v /= np.linalg.norm(v)
                        w = apply(op.matvec(v))
                        top = float(v @ w)
                        v = w
                    epochs += 3
                    step = 1.0 / max(top, np.finfo(float).tiny)
                A += step * Z
                R = Y2 - op.matvec(A)
                Z = apply(R)
            epochs += 1
            rel = float(np.max(np.linalg.norm(R, axis=0) / norms))
            history.append(rel)
            if verbose:
                print(f"[infdepth.solvers] epoch {epochs}: residual {rel:.3e} "
                      f"({time.perf_counter() - start:.1f} s)", flush=True)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(residual=f"{rel:.2e}")
    finally:
        if bar is not None:
            bar.close()
    if method == "cg" and epochs:  # the recursion's residual drifts: check the true one
        R = Y2 - op.matvec(A)
        rel = float(np.max(np.linalg.norm(R, axis=0) / norms))
        history.append(rel)
    converged = rel <= tol
    if not converged:
        warnings.warn(
            f"the iterative kernel solve stopped after {epochs} epochs with relative "
            f"training residual {rel:.3e} > tol={tol:g}; raise max_iter (or rank), or "
            "set ridge > 0 (ill-conditioned Gram matrix).",
            ConvergenceWarning, stacklevel=2)
    return IterativeResult(A[:, 0] if vector else A, converged, epochs, rel, history,
                           time.perf_counter() - start, method)
