"""Normalized outputs D(x) and their projection onto the probability simplex."""

from __future__ import annotations

import numpy as np


# =========================================================================== outputs
def normalize_outputs(f: np.ndarray) -> np.ndarray:
    """f / N with N = sum_c f_c if positive, else max_c |f_c| (see the module docstring)."""
    total = f.sum(axis=1)
    scale = np.where(total > 0, total, np.max(np.abs(f), axis=1))
    scale = np.where(scale > 0, scale, 1.0)
    return f / scale[:, None]


def simplex_projection(D: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row onto the probability simplex."""
    u = -np.sort(-D, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, D.shape[1] + 1)
    rho = np.count_nonzero(u - css / k > 0, axis=1)
    tau = css[np.arange(D.shape[0]), rho - 1] / rho
    return np.maximum(D - tau[:, None], 0.0)
