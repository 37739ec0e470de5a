"""Truncated power series: the arithmetic behind the Fatou and Schroder
coordinates (infdepth.parabolic, infdepth.hyperbolic).

A series is a float array ``a`` meaning sum_j a[j] x^j, truncated after ``size`` terms.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pad", "series_mul", "series_inv", "series_exp", "series_log1p", "series_compose",
           "series_reverse"]


def pad(a: np.ndarray, size: int) -> np.ndarray:
    """a truncated or zero-padded to ``size`` terms (a new array)."""
    a = np.asarray(a, dtype=float)[:size]
    out = np.zeros(size)
    out[:a.size] = a
    return out


def series_mul(a: np.ndarray, b: np.ndarray, size: int) -> np.ndarray:
    return pad(np.convolve(a, b), size)


def series_inv(a: np.ndarray, size: int) -> np.ndarray:
    """1 / a as a power series (a[0] != 0)."""
    a = pad(a, size)
    out = np.zeros(size)
    out[0] = 1.0 / a[0]
    for n in range(1, size):
        out[n] = -np.dot(a[1:n + 1], out[n - 1::-1]) / a[0]
    return out


def series_exp(s: np.ndarray, size: int) -> np.ndarray:
    """exp(s) for a series with s[0] = 0 (E' = s' E)."""
    s = pad(s, size)
    ks = np.arange(size) * s
    out = np.zeros(size)
    out[0] = 1.0
    for n in range(1, size):
        out[n] = np.dot(ks[1:n + 1], out[n - 1::-1]) / n
    return out


def series_log1p(r: np.ndarray, size: int) -> np.ndarray:
    """log(1 + r) for a series with r[0] = 0 (L' = r' / (1 + r))."""
    r = pad(r, size)
    one_plus = r.copy()
    one_plus[0] = 1.0
    dr = np.arange(1, size) * r[1:]
    q = series_mul(dr, series_inv(one_plus, size), size - 1)
    out = np.zeros(size)
    out[1:] = q / np.arange(1, size)
    return out



def series_compose(outer: np.ndarray, inner: np.ndarray, size: int) -> np.ndarray:
    """outer(inner(x)) for an inner series with inner[0] = 0 (Horner in series)."""
    inner = pad(inner, size)
    out = np.zeros(size)
    for c in pad(outer, size)[::-1]:
        out = series_mul(out, inner, size)
        out[0] += c
    return out


def series_reverse(a: np.ndarray, size: int) -> np.ndarray:
    """The compositional inverse b of a (a[0] = 0, a[1] != 0): a(b(x)) = x.

    Newton's iteration b <- b - (a(b) - x) / a'(b) doubles the correct terms each step.
    """
    a = pad(a, size)
    b = np.zeros(size)
    b[1] = 1.0 / a[1]
    da = np.arange(1, size) * a[1:]
    identity = np.zeros(size)
    identity[1] = 1.0
    for _ in range(int(np.ceil(np.log2(size))) + 1):
        residual = series_compose(a, b, size) - identity
        b = b - series_mul(residual, series_inv(series_compose(da, b, size), size), size)
    return b
