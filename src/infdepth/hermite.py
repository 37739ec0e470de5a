"""Hermite machinery: orthonormal Hermite coefficients of a function by Gaussian quadrature,
Hermite series, and the check of inner products that every dual applies.

a_k = E[phi(u) He_k(u)] / sqrt(k!) for u ~ N(0, 1), by composite Gauss-Legendre
quadrature on [-14, 14] (beyond it e^{-u^2/4} < 1e-21).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["hermite_coefficients", "hermite_series", "check_inner_products",
           "MAX_HERMITE_DEGREE"]

#: Largest number of Hermite coefficients computed for a callable.
MAX_HERMITE_DEGREE = 512
#: Quadrature covers [-QUADRATURE_HALF_WIDTH, QUADRATURE_HALF_WIDTH]; beyond it
#: e^{-x^2/4} < 1e-21, so orthonormal Hermite functions are negligible there.
QUADRATURE_HALF_WIDTH = 14.0


@dataclass(frozen=True)
class _Quadrature:
    nodes: np.ndarray
    weights: np.ndarray  # include the standard normal density


def _gaussian_quadrature(panels: int = 280, order: int = 24) -> _Quadrature:
    """Composite Gauss-Legendre rule for E[f(u)], u ~ N(0,1), with a panel edge at 0.

    Kinks at 0 (ReLU, abs, leaky ReLU) fall on a panel boundary, so they are
    integrated to full precision; smooth integrands converge spectrally.
    """
    x, w = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(-QUADRATURE_HALF_WIDTH, QUADRATURE_HALF_WIDTH, panels + 1)
    half = np.diff(edges) / 2
    mid = (edges[:-1] + edges[1:]) / 2
    nodes = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weights = (half[:, None] * w[None, :]).ravel()
    weights = weights * np.exp(-nodes**2 / 2) / math.sqrt(2 * math.pi)
    return _Quadrature(nodes, weights)


QUADRATURE = _gaussian_quadrature()


def _hermite_functions(x: np.ndarray, degree: int) -> np.ndarray:
    """Rows h_k(x) = He_k(x) / sqrt(k!) for k = 0..degree (three-term recurrence)."""
    out = np.empty((degree + 1, x.size))
    out[0] = 1.0
    if degree >= 1:
        out[1] = x
    for k in range(1, degree):
        out[k + 1] = (x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1)
    return out


QUADRATURE_HERMITE = (
    _hermite_functions(QUADRATURE.nodes, MAX_HERMITE_DEGREE) * QUADRATURE.weights
)


def evaluate_checked(fn: Callable, x: np.ndarray, quiet: bool = False) -> np.ndarray:
    """fn(x) as a float array of x's shape; ``quiet`` silences numpy's floating-point
    warnings inside fn (the caller then reports non-finite values itself)."""
    try:
        if quiet:
            with np.errstate(all="ignore"):
                y = np.asarray(fn(x), dtype=float)
        else:
            y = np.asarray(fn(x), dtype=float)
    except Exception as exc:  # a callable that is not numpy-vectorized
        raise ValueError(f"activation callable failed on a numpy array: {exc}") from exc
    if y.shape != x.shape:
        try:
            y = np.broadcast_to(y, x.shape).astype(float)
        except ValueError:
            raise ValueError(
                f"activation callable returned shape {y.shape} for input of shape {x.shape}; "
                "it must be numpy-vectorized (elementwise)"
            ) from None
    return y


def hermite_coefficients(
    fn: Callable, degree: int = MAX_HERMITE_DEGREE
) -> tuple[np.ndarray, float]:
    """Orthonormal Hermite coefficients of ``fn`` and ``E[fn(u)^2]``.

    Returns ``(a, second_moment)`` with a_k = E[fn(u) He_k(u)] / sqrt(k!), k = 0..degree.
    Raises ``ValueError`` if fn is not finite on the quadrature nodes, if
    E[fn^2] = 0, or if fn grows so fast that E[fn^2] is (numerically) infinite.
    """
    y = evaluate_checked(fn, QUADRATURE.nodes, quiet=True)
    if not np.all(np.isfinite(y)):
        where = QUADRATURE.nodes[~np.isfinite(y)]
        raise ValueError(
            f"activation is not finite on [-14, 14] (non-finite at {where.size} quadrature "
            f"nodes in [{where.min():.3g}, {where.max():.3g}]); E[phi(u)^2] cannot be computed"
        )
    contributions = QUADRATURE.weights * y * y
    second_moment = float(contributions.sum())
    if not np.isfinite(second_moment) or second_moment <= 1e-300:
        raise ValueError("activation has E[phi(u)^2] = 0: it cannot be normalized")
    outer = np.abs(QUADRATURE.nodes) > QUADRATURE_HALF_WIDTH - 4
    if contributions[outer].sum() > 1e-10 * second_moment:
        raise ValueError(
            "activation is not normalizable: E[phi(u)^2] is infinite or numerically "
            "dominated by |u| > 10 (phi grows like exp(u^2/4) or faster)"
        )
    a = QUADRATURE_HERMITE[: degree + 1] @ y
    return a, second_moment


def hermite_series(x, coefficients) -> np.ndarray:
    """sum_k a_k He_k(x) / sqrt(k!) by the stable three-term recurrence."""
    x = np.asarray(x, dtype=float)
    a = np.asarray(coefficients, dtype=float)
    h_prev, h = np.zeros_like(x), np.ones_like(x)
    out = a[0] * h
    for k in range(1, a.size):
        h_prev, h = h, (x * h - math.sqrt(k - 1) * h_prev) / math.sqrt(k)
        out = out + a[k] * h
    return out


def trim_coefficients(a: np.ndarray) -> np.ndarray:
    """Drop trailing coefficients whose squares are negligible."""
    a = np.asarray(a, dtype=float)
    big = np.flatnonzero(a * a > 1e-20 * max(float(np.sum(a * a)), 1e-300))
    return a[: big[-1] + 1] if big.size else a[:1]


def check_inner_products(xi) -> np.ndarray:
    """Inner products as a float array clipped to [-1, 1]; NaN/inf or |xi| > 1 raise."""
    xi = np.asarray(xi, dtype=float)
    if not np.all(np.isfinite(xi)):
        raise ValueError("inner products must be finite (got NaN or inf)")
    if np.any(np.abs(xi) > 1 + 1e-12):
        raise ValueError(
            f"inner products must lie in [-1, 1]; got values up to {np.max(np.abs(xi)):.6g}. "
            "Are the inputs unit vectors?"
        )
    return np.clip(xi, -1.0, 1.0)
