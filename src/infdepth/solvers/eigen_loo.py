"""Every ridge's leave-one-out (or K-fold) residuals from one symmetric eigendecomposition.

Kernel ridge regression with targets Y predicts ``F = K (K + lam I)^-1 Y`` on its training
set. With ``G = (K + lam I)^-1`` the leave-one-out residual of point i is the classical

    e_i = y_i - f_{-i}(x_i) = (G Y)_i / G_ii                                    (1)

and, for a validation block V of a K-fold split (train on the complement T),

    e_V = (G_VV)^-1 (G Y)_V,   i.e.  f_V = K_VT (K_TT + lam I)^-1 Y_T = Y_V - e_V.  (2)

Both follow from the block inverse of ``K + lam I`` (RidgeCV's ``gcv_mode="eigen"`` uses
(1)). One factorization ``G(lam) = W diag(1 / (t d + lam)) W^T + z z^T / s`` serves every
lam in O(n^2) per lam:

* plain kernels: ``K = V diag(w) V^T`` (``scipy.linalg.eigh``), W = V, d = w, t = 1, no
  rank-one term;
* kernels that tend to the all-ones matrix J with depth (ReLU family, softplus), given
  as ``K = J - t E`` with E the complement 1 - k scaled to max 1 (computed by the engine
  to full relative accuracy): after the Householder reflection H with ``H 1 = -sqrt(n) e_1``
  the system ``H (K + lam I) H = n e_1 e_1^T - t H E H + lam I`` is block-inverted (Schur
  complement of the (1, 1) entry). Only ``P = -(H E H)[1:, 1:]`` (positive semidefinite:
  E is conditionally negative definite) is decomposed, ``P = U diag(mu) U^T``; the
  constant direction is the explicit rank-one term, so no digit of E is lost to J.
  ``t = 0`` is the ``t -> 0`` limit (the psi interpolant of depth infinity with an
  intercept): (1) and (2) keep only the 1/t-dominant term.

At ``lam = 0`` eigenvalues below ``n * GRAM_RTOL`` times the largest are dropped (the
pseudo-inverse :func:`infdepth.solvers.dense.spd_solve` falls back to); (1) and (2) are
exact only when none is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .dense import GRAM_RTOL, householder

__all__ = ["SpectralRidge", "spectral_ridge", "complement_spectral_ridge"]


@dataclass
class SpectralRidge:
    """``(K + lam I)^-1`` for every lam from one eigendecomposition (see the module docstring).

    Attributes
    ----------
    W : ndarray (n, r)
        Orthonormal columns (eigenvectors, reflected back for the complement system).
    d : ndarray (r,)
        Eigenvalues, in units of ``t``.
    t : float
        Scale of the decomposed part (1 for plain kernels; 0: the psi limit).
    h1, beta, b11, n : complement system only
        ``H e_1``, ``U^T b`` with ``b = -(H E H)[1:, 0]``, ``(H E H)[0, 0]`` and n; None/0
        for plain kernels.
    """

    W: np.ndarray
    d: np.ndarray
    t: float = 1.0
    h1: np.ndarray | None = None
    beta: np.ndarray | None = None
    b11: float = 0.0

    @property
    def n(self) -> int:
        return self.W.shape[0]

    def _inverse_parts(self, lam: float):
        """(D, z, 1/s): ``G = W diag(D) W^T + z z^T / s`` (z None without rank-one term)."""
        scaled = self.t * self.d if self.t > 0 else self.d.copy()
        if lam > 0:
            denom = np.maximum(scaled, 0.0) + lam
            D = 1.0 / denom
        else:
            top = float(np.max(scaled, initial=0.0))
            keep = scaled > self.n * GRAM_RTOL * top
            D = np.zeros_like(scaled)
            D[keep] = 1.0 / scaled[keep]
        if self.h1 is None or self.t == 0:
            return D, None, 0.0
        b = -self.t * self.beta  # U^T of the off-diagonal block of H (K + lam I) H
        c = D * b
        s = self.n - self.t * self.b11 + lam - float(b @ c)
        z = self.h1 - self.W @ c
        return D, z, 1.0 / s

    def loo_residuals(self, Y: np.ndarray, lams, WtY: np.ndarray | None = None):
        """Leave-one-out residuals ``(G Y)_i / G_ii`` for each lam: shape (len(lams), n, c).

        Every lam in two products with W (``W diag(D) W^T Y`` and ``(W * W) D`` for all
        lams at once): W is read twice, not twice per lam.
        """
        WtY = self.W.T @ Y if WtY is None else WtY
        parts = [self._inverse_parts(float(lam)) for lam in lams]
        D = np.stack([p[0] for p in parts], axis=1)  # (n, lams)
        c = Y.shape[1]
        GY = (self.W @ (D[:, :, None] * WtY[:, None, :]).reshape(D.shape[0], -1)).reshape(
            self.n, len(parts), c)
        diag = (self.W * self.W) @ D
        for k, (_, z, inv_s) in enumerate(parts):
            if z is not None:
                GY[:, k] += inv_s * np.outer(z, z @ Y)
                diag[:, k] += inv_s * z * z
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.moveaxis(GY / diag[:, :, None], 1, 0)

    def fold_residuals(self, Y: np.ndarray, lams, folds) -> list[np.ndarray]:
        """K-fold residuals ``e_V = (G_VV)^-1 (G Y)_V``, (2): one array (len(lams), |V|, c)
        per validation index set V in ``folds``."""
        WtY = self.W.T @ Y
        out = [np.empty((len(lams), len(va), Y.shape[1])) for va in folds]
        for k, lam in enumerate(lams):
            D, z, inv_s = self._inverse_parts(float(lam))
            GY = self.W @ (D[:, None] * WtY)
            if z is not None:
                GY += inv_s * np.outer(z, z @ Y)
            for f, va in enumerate(folds):
                Wv = self.W[va]
                Gvv = (Wv * D) @ Wv.T
                if z is not None:
                    Gvv += inv_s * np.outer(z[va], z[va])
                Gvv = (Gvv + Gvv.T) / 2
                try:
                    out[f][k] = scipy.linalg.solve(Gvv, GY[va], assume_a="sym",
                                                   check_finite=False)
                except (np.linalg.LinAlgError, ValueError):
                    out[f][k] = scipy.linalg.lstsq(Gvv, GY[va], check_finite=False)[0]
        return out


def spectral_ridge(K: np.ndarray) -> SpectralRidge:
    """Factor a symmetric Gram matrix K once: ``K = V diag(w) V^T``."""
    w, V = scipy.linalg.eigh((K + K.T) / 2, driver="evd", check_finite=False)
    return SpectralRidge(W=V, d=w)


def complement_spectral_ridge(E: np.ndarray, t: float) -> SpectralRidge:
    """Factor ``K = J - t E`` (E symmetric, zero diagonal, scaled to max 1) in complement
    coordinates; ``t = 0`` gives the psi limit (interpolation with -E plus a constant)."""
    n = E.shape[0]
    v0 = 1.0 + math.sqrt(n)
    B = householder(v0, householder(v0, E).T)  # H E H
    B = (B + B.T) / 2
    mu, U = scipy.linalg.eigh(-B[1:, 1:], driver="evd", check_finite=False)
    Ut = np.vstack([np.zeros((1, n - 1)), U])
    W = householder(v0, Ut)  # H [0; U]
    h1 = householder(v0, np.eye(n, 1)[:, 0])
    return SpectralRidge(W=W, d=mu, t=float(t), h1=h1, beta=U.T @ B[1:, 0],
                         b11=float(B[0, 0]))
