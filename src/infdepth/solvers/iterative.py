"""Iterative kernel regression: (K + ridge I) A = Y without forming the n x n matrix.

The solver sees a *Gram operator*: an object with ``n`` (number of training points),
``ridge``, ``matvec(V)`` (``(K + ridge I) V`` computed in row blocks of K, each block made
by the engine and dropped after its product) and ``block(rows, cols)`` (the entries
``K[rows][:, cols]`` without the ridge). Three operators are provided: :class:`GramOperator`
(numpy/numba on the CPU, or a torch device through :class:`~infdepth.kernels.Kernel`'s
``device``), and :class:`DaskGramOperator` (each row block's product is a task on a
``dask.distributed`` cluster; the iteration stays on the client).

Method (one for ridge = 0 and ridge > 0): conjugate gradients preconditioned by a
rank-s Nystrom approximation ``K ~ U diag(lam) U^T`` of s columns sampled at random
(Frangella, Tropp & Udell 2021; the preconditioner of Falkon, the eigensystem of EigenPro):

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
one row block of ``block_entries`` kernel values; time per epoch: one pass over the
n x n kernel (one matrix product and one table read per entry).

Precision: ``Kernel(dtype="float32")`` blocks carry errors of about 1e-7 in the kernel
values (docs/api.md "Precision"), a perturbation dK of K; the residual the iteration can
reach is then about ||dK A|| / ||Y||, so use ``tol >= 1e-5`` with float32 blocks
(float64, the default, reaches 1e-6 and below).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from sklearn.exceptions import ConvergenceWarning

#: Kernel entries per row block of a matrix-vector pass (float64: 64 MiB).
BLOCK_ENTRIES = 1 << 23

__all__ = ["BLOCK_ENTRIES", "DaskGramOperator", "GramOperator", "IterativeResult",
           "NystromPreconditioner", "solve"]


def _rows_per_block(n: int, block_entries: int) -> int:
    if not (isinstance(block_entries, int | np.integer) and block_entries >= 1):
        raise ValueError(f"block_entries must be a positive integer, got {block_entries!r}")
    return max(1, min(n, int(block_entries) // max(n, 1)))


def _unit_rows(X: Any) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty 2-D array, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinity")
    return X


def _check_ridge(ridge: Any) -> float:
    if isinstance(ridge, bool) or not isinstance(ridge, int | float | np.floating) or not (
            math.isfinite(ridge) and ridge >= 0):
        raise ValueError(f"ridge must be a non-negative finite number, got {ridge!r}")
    return float(ridge)


# =========================================================================== operators
class GramOperator:
    """``K + ridge I`` for ``K = kernel(X, X)``, applied in row blocks, never stored.

    Parameters
    ----------
    kernel : callable ``(A, B) -> ndarray``
        Usually :class:`infdepth.kernels.Kernel` (its ``dtype`` and ``device`` choose
        float32 blocks and a torch device such as ``"cuda"``).
    X : ndarray (n, d)
        Training points (unit rows for :class:`~infdepth.kernels.Kernel`).
    ridge : float
        Added to the diagonal in :meth:`matvec` (not in :meth:`block`).
    block_entries : int
        Kernel entries per row block (memory of one pass: 8 bytes each).
    """

    def __init__(self, kernel, X, ridge: float = 0.0, *, block_entries: int = BLOCK_ENTRIES):
        self.kernel = kernel
        self.X = _unit_rows(X)
        self.ridge = _check_ridge(ridge)
        self.n = self.X.shape[0]
        self.rows_per_block = _rows_per_block(self.n, block_entries)

    def row_slices(self) -> list[slice]:
        b = self.rows_per_block
        return [slice(i, min(i + b, self.n)) for i in range(0, self.n, b)]

    def block(self, rows, cols) -> np.ndarray:
        """``K[rows][:, cols]`` (index arrays or slices), float64, without the ridge."""
        return np.asarray(self.kernel(self.X[rows], self.X[cols]), dtype=np.float64)

    def matvec(self, V: np.ndarray) -> np.ndarray:
        """``(K + ridge I) V`` for V of shape (n,) or (n, c): one pass over K's rows."""
        V = np.asarray(V, dtype=np.float64)
        if V.shape[0] != self.n:
            raise ValueError(f"V has {V.shape[0]} rows, the operator {self.n}")
        out = np.empty_like(V)
        for rows in self.row_slices():
            Kb = self.kernel(self.X[rows], self.X)
            out[rows] = Kb @ V.astype(Kb.dtype, copy=False)
        if self.ridge:
            out += self.ridge * V
        return out


def _dask_block_product(kernel, X: np.ndarray, start: int, stop: int, V: np.ndarray):
    Kb = kernel(X[start:stop], X)
    return Kb @ V.astype(Kb.dtype, copy=False)


class DaskGramOperator(GramOperator):
    """:class:`GramOperator` whose row-block products are tasks on a Dask cluster.

    X is scattered to every worker once; each :meth:`matvec` scatters V and submits one
    task per row block (``K[rows] @ V`` computed on the worker, only the n x c product
    comes back). The kernel must be picklable (:class:`~infdepth.kernels.Kernel` with an
    activation name is).

    Parameters
    ----------
    client : dask.distributed.Client
    kernel, X, ridge, block_entries : see :class:`GramOperator`.
    """

    def __init__(self, client, kernel, X, ridge: float = 0.0, *,
                 block_entries: int = BLOCK_ENTRIES):
        super().__init__(kernel, X, ridge, block_entries=block_entries)
        self.client = client
        self._X_remote = client.scatter(self.X, broadcast=True, hash=False)
        self._kernel_remote = client.scatter(kernel, broadcast=True, hash=False)

    def matvec(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        if V.shape[0] != self.n:
            raise ValueError(f"V has {V.shape[0]} rows, the operator {self.n}")
        V_remote = self.client.scatter(V, broadcast=True, hash=False)
        slices = self.row_slices()
        futures = [self.client.submit(_dask_block_product, self._kernel_remote,
                                      self._X_remote, s.start, s.stop, V_remote, pure=False)
                   for s in slices]
        out = np.concatenate(self.client.gather(futures), axis=0)
        if self.ridge:
            out += self.ridge * V
        return out


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
    def build(cls, op, s: int, random_state=None) -> NystromPreconditioner:
        """From s columns of K sampled without replacement: with W = K[S, S] + nu I =
        L L^T (nu a tiny shift for stability), F = K[:, S] L^{-T} = U Sigma V^T gives
        lam = Sigma^2 - nu."""
        n = op.n
        s = int(min(s, n))
        rng = np.random.default_rng(random_state)
        S = np.sort(rng.choice(n, size=s, replace=False))
        C = np.empty((n, s))
        for rows in op.row_slices() if hasattr(op, "row_slices") else [slice(0, n)]:
            C[rows] = op.block(rows, S)
        W = (C[S] + C[S].T) / 2
        nu = np.finfo(float).eps * max(np.trace(W), 1.0) * s
        L = scipy.linalg.cholesky(W + nu * np.eye(s), lower=True, check_finite=False)
        F = scipy.linalg.solve_triangular(L, C.T, lower=True, check_finite=False).T
        del C
        U, sigma, _ = scipy.linalg.svd(F, full_matrices=False, check_finite=False,
                                       overwrite_a=True)
        lam = np.maximum(sigma**2 - nu, 0.0)
        keep = lam > max(lam[0], 0.0) * 1e-12 if lam.size else lam > 0
        return cls(np.ascontiguousarray(U[:, keep]), lam[keep], float(op.ridge))

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


def solve(op, Y, *, tol: float = 1e-6, max_iter: int = 200, rank: int = 500,
          method: str = "cg", random_state=0, verbose: int = 0, progress: bool = False,
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
    rank : int
        s, the Nystrom rank (columns sampled; memory n s floats); 0: no preconditioner.
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
    if not (isinstance(tol, int | float | np.floating) and not isinstance(tol, bool)
            and math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    if isinstance(rank, bool) or not isinstance(rank, int | np.integer) or rank < 0:
        raise ValueError(f"rank must be a non-negative integer, got {rank!r}")
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
        P = NystromPreconditioner.build(op, rank, random_state)
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
