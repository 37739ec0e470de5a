"""An independent mpmath reference for parabolic duals at great depth (10^6 to 10^12).

Nothing here imports infdepth. The depth recursion is run literally for ``n0`` layers in
50-digit arithmetic; the remaining layers use the first terms of the Fatou coordinate
Phi(x) = A / x + kappa log x + phi_1 x of x -> f(x) = x + b x^2 + c x^3 + e x^4
(x = (1 - S)^(1/p)), with b, c, e from mpmath's contour-integral Taylor coefficients and
the closed forms A = -1/b, kappa = 1 - c / b^2,
phi_1 = -(A (2 b c - b^3 - e) + kappa (c - b^2 / 2)) / b
(the orders x^0, x^1, x^2 of Phi(f(x)) - Phi(x) = 1). Phi is inverted by mpmath's
findroot and the NTK sum K_L V_L = K_n V_n + sum_l S_l V_l (V = dPhi / d(1 - S)) is
summed by mpmath's own Euler-Maclaurin routine ``sumem``. Truncating Phi after phi_1
moves w = Phi(x_n0) by about phi_2 x_n0^2 ~ 1e-6, a relative error of about 2e-6 / L in
delta_L: below 1e-12 at the depths this reference is used for.
"""

from __future__ import annotations

import mpmath as mp

mp.mp.dps = 50


def relu_family(kinked):
    """(dual, derivative, g) of the normalized ReLU family; g(x) = 1 - dual(1 - x^2) in
    the analytic form 1 - cos t - kinked (2/pi)(sin t - t cos t), t = 2 asin(x / sqrt 2)."""
    kinked = mp.mpf(kinked)
    linear = 1 - kinked

    def dual(x):
        return linear * x + kinked * 2 / mp.pi * (mp.sqrt(1 - x * x) + x * mp.asin(x))

    def derivative(x):
        return linear + kinked * 2 / mp.pi * mp.asin(x)

    def g(x):
        t = 2 * mp.asin(x / mp.sqrt(2))
        return 1 - mp.cos(t) - kinked * 2 / mp.pi * (mp.sin(t) - t * mp.cos(t))

    return dual, derivative, g, 2


def polynomial(coefficients):
    c = [mp.mpf(v) for v in coefficients]
    total = sum(c)
    c = [v / total for v in c]

    def dual(x):
        return sum(ck * x**k for k, ck in enumerate(c))

    def derivative(x):
        return sum(k * ck * x ** (k - 1) for k, ck in enumerate(c) if k > 0)

    return dual, derivative, (lambda d: 1 - dual(1 - d)), 1


def _fatou(g, p):
    if p == 2:
        def f(x):
            return x * mp.sqrt(g(x) / (x * x))
    else:
        f = g
    coefficients = mp.taylor(f, 0, 4, method="quad", radius=mp.mpf("0.25"))
    b, c, e = (mp.re(coefficients[j]) for j in (2, 3, 4))
    A = -1 / b
    kappa = 1 - c / b**2
    phi1 = -(A * (2 * b * c - b**3 - e) + kappa * (c - b**2 / 2)) / b
    return A, kappa, phi1


def deep_kernels(family, xi, depth: int, n0: int = 2000):
    """(1 - S_L, K_L / (L + 1), 1 - K_L / (L + 1)) for a parabolic dual, any depth > n0."""
    dual, derivative, g, p = family
    S = mp.mpf(xi)
    K = mp.mpf(xi)
    for _ in range(n0):
        K = dual(S) + K * derivative(S)
        S = dual(S)
    A, kappa, phi1 = _fatou(g, p)

    def Phi(x):
        return A / x + kappa * mp.log(x) + phi1 * x

    def V(x):  # dPhi/d delta = Phi'(x) / (p x^(p-1))
        return (-A / x**2 + kappa / x + phi1) / (p * x ** (p - 1))

    x_n = (1 - S) ** (mp.mpf(1) / p)
    w_n = Phi(x_n)

    def x_of(w):
        return mp.findroot(lambda x: Phi(x) / w - 1, A / (w - kappa * mp.log(A / w)))

    x_L = x_of(w_n + depth - n0)

    def term(j):
        x = x_of(w_n + j)
        return (1 - x**p) * V(x)

    with mp.workdps(20):  # the sum is needed to ~1e-12 only
        tail = mp.sumem(term, [1, depth - n0])
    total = K * V(x_n) + tail
    k = total / V(x_L) / (depth + 1)
    return x_L**p, k, 1 - k
