"""Independent high-precision references (mpmath) for the kernel engine tests.

Nothing here imports infdepth's kernel code: duals are written out again in mpmath
and the depth recursion of docs/theory.md section 3 is run literally, one layer at a time.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 50


def relu_dual(x):
    return (mp.sqrt(1 - x * x) + (mp.pi - mp.acos(x)) * x) / mp.pi


def relu_dual_derivative(x):
    return (mp.pi - mp.acos(x)) / mp.pi


def erf_dual(x):
    return mp.asin(2 * x / 3) / mp.asin(mp.mpf(2) / 3)


def erf_dual_derivative(x):
    return (mp.mpf(2) / 3) / mp.sqrt(1 - 4 * x * x / 9) / mp.asin(mp.mpf(2) / 3)


def sinh_dual(a):
    a = mp.mpf(a)
    return (lambda x: mp.sinh(a * x) / mp.sinh(a)), (lambda x: a * mp.cosh(a * x) / mp.sinh(a))


def polynomial_dual(coefficients):
    c = [mp.mpf(v) for v in coefficients]
    total = sum(c)
    c = [v / total for v in c]
    return (
        lambda x: sum(ck * x**k for k, ck in enumerate(c)),
        lambda x: sum(k * ck * x ** (k - 1) for k, ck in enumerate(c) if k > 0),
    )


DUALS = {
    "relu": (relu_dual, relu_dual_derivative),
    "erf": (erf_dual, erf_dual_derivative),
}


def kernels(xi, dual, derivative, depth: int):
    """Normalized (S_L, K_L / K_L(1)) at xi by the literal recursion, in mpmath."""
    S = mp.mpf(xi)
    K = mp.mpf(xi)
    m = derivative(mp.mpf(1))
    D = mp.mpf(1)
    for _ in range(depth):
        K = dual(S) + K * derivative(S)
        S = dual(S)
        D = 1 + m * D
    return S, K / D


def koenigs(xi, dual, derivative, tolerance=1e-40):
    """h(xi) = lim S_L / c0^L for an attracting fixed point 0 with 0 < c0 < 1."""
    c0 = derivative(mp.mpf(0))
    S = mp.mpf(xi)
    scale = mp.mpf(1)
    tolerance = mp.mpf(tolerance)
    while abs(S) > tolerance:
        S = dual(S)
        scale *= c0
    return S / scale
