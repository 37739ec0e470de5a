"""Dense linear solves of kernel interpolation and their memory guard.

Gram matrices (plus ridge) are factored by Cholesky with an eigendecomposition fallback;
kernels that tend to 1 with depth are solved in complement coordinates.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import scipy.linalg

#: Relative accuracy of kernel and complement values from the engine's tables (their
#: design target, see :mod:`infdepth.kernels`): the Gram solver's rank tolerance is n times it.
GRAM_RTOL = 1e-12



class IllConditionedGramWarning(UserWarning):
    """The Gram matrix was numerically singular; a pseudo-inverse was used instead."""


# =========================================================================== memory
#: Most memory (bytes) a fit may need for its n x n matrices; ``None`` (the default) means
#: the machine's physical memory. A fit that would need more raises ``MemoryError`` before
#: allocating anything. Finite-depth fits and the psi rule need about
#: ``FIT_MATRICES * 8 * n**2`` bytes; the other depth-infinity rules need O(n).
FIT_MEMORY_LIMIT: int | None = None
#: Peak number of float64 n x n arrays alive during a fit (8.1 measured with the
#: eigendecomposition fallback, 7.1 with Cholesky in complement coordinates).
FIT_MATRICES = 9


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return None


def fits_in_memory(n: int) -> bool:
    """Whether a dense fit's n x n matrices fit in ``FIT_MEMORY_LIMIT`` (or the memory)."""
    limit = FIT_MEMORY_LIMIT if FIT_MEMORY_LIMIT is not None else physical_memory()
    return limit is None or FIT_MATRICES * 8 * n * n <= limit


def check_fit_memory(n: int, what: str) -> None:
    """MemoryError, saying how much is needed, if the fit's matrices exceed the limit."""
    limit = FIT_MEMORY_LIMIT if FIT_MEMORY_LIMIT is not None else physical_memory()
    need = FIT_MATRICES * 8 * n * n
    if limit is not None and need > limit:
        raise MemoryError(
            f"{what} on {n} training points needs about {need / 2**30:.3g} GiB for its "
            f"{n} x {n} kernel matrices ({FIT_MATRICES} float64 arrays), more than the "
            f"limit of {limit / 2**30:.3g} GiB (infdepth.estimators.FIT_MEMORY_LIMIT, "
            "default: physical memory). Fit on fewer points, use solver='iterative' (MLP "
            "kernels at finite depth: no n x n matrix), or depth=math.inf, whose "
            "vote rules need no kernel matrix."
        )


# =========================================================================== solvers
def spd_solve(A: np.ndarray, B: np.ndarray, what: str):
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


def householder(v_first: float, A: np.ndarray) -> np.ndarray:
    """H A for H = I - 2 v v^T / v^T v, v = 1 + sqrt(n) e_1 (so H 1 = -sqrt(n) e_1)."""
    n = A.shape[0]
    v = np.ones(n)
    v[0] = v_first
    proj = (v @ A) * (2.0 / (v @ v))
    return A - np.outer(v, proj) if A.ndim == 2 else A - v * proj


def complement_solve(E: np.ndarray, Y: np.ndarray, t: float):
    """Coefficients of kernel interpolation with K = J - t E (E symmetric, zero diagonal).

    Returns (c0, beta, solver, discarded) such that the interpolant is
    f(x) = c0 - e(x)^T beta, where e(x) = (1 - k(x, x_j)) / t. ``t = 0`` gives the
    t -> 0 limit: interpolation with the conditionally negative definite kernel E, i.e.
    [[-E, 1], [1^T, 0]] [beta; c0] = [Y; 0].
    """
    n = E.shape[0]
    v0 = 1.0 + math.sqrt(n)
    B = householder(v0, householder(v0, E).T)  # H E H (symmetric)
    B = (B + B.T) / 2
    r = householder(v0, Y)
    b11, e, P = B[0, 0], B[1:, 0], -B[1:, 1:]
    if n == 1:
        z1 = r[0] / (n - t * b11)
        return -math.sqrt(n) * z1, np.zeros((1, Y.shape[1])), "cholesky", 0
    sol, solver, discarded = spd_solve(P, np.column_stack([r[1:], e]), "kernel matrix")
    u, w = sol[:, :-1], sol[:, -1]
    z1 = (r[0] + e @ u) / (n - t * b11 - t * (e @ w))
    z2 = u + t * np.outer(w, z1)
    beta = householder(v0, np.vstack([t * z1[None, :], z2]))
    return -math.sqrt(n) * z1, beta, solver, discarded
