"""Independent references for the ResNet kernels (nothing here imports infdepth).

The block map V(q)(x, z) = E[phi(u) phi(v)] is written out again for unit-sphere inputs
(q_xx = q_zz = q) from scratch: closed forms in 50-digit mpmath for the normalized ReLU,
erf and the trigonometric activation (sin x + cos(2x) / 2) / N; a float64 tensor
Gauss-Hermite rule (200 x 200 nodes, no Hermite series) for tanh. The layer recursion
runs literally in the *unnormalized* coordinates (q, q_xz, Theta_xx, Theta_xz), in
mpmath, and the depth-infinity ODE is solved per point in those coordinates by
``solve_ivp`` at rtol 1e-12 (the library solves the normalized ODE on the whole grid).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np

mp.mp.dps = 50


# ----------------------------------------------------------------------- block maps
def _relu(q, c):
    rho = c / q
    rho = max(min(rho, mp.mpf(1)), mp.mpf(-1))
    value = q * (mp.sqrt(1 - rho * rho) + (mp.pi - mp.acos(rho)) * rho) / mp.pi
    return value, (mp.pi - mp.acos(rho)) / mp.pi


def _erf(q, c):
    s = 1 + 2 * q
    arg = 2 * c / s
    norm = mp.asin(mp.mpf(2) / 3)
    return mp.asin(arg) / norm, (2 / s) / mp.sqrt(1 - arg * arg) / norm


_TRIG_NORM = (1 - mp.exp(-2)) / 2 + (1 + mp.exp(-8)) / 8  # E[(sin u + cos(2u)/2)^2]


def trig(x):
    """The from_callable test activation, unnormalized."""
    return np.sin(x) + 0.5 * np.cos(2 * x)


def _trig(q, c):
    e1, e4 = mp.exp(-q), mp.exp(-4 * q)
    value = (e1 * mp.sinh(c) + e4 * mp.cosh(4 * c) / 4) / _TRIG_NORM
    return value, (e1 * mp.cosh(c) + e4 * mp.sinh(4 * c)) / _TRIG_NORM


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(200)
_GH_W = _GH_W / _GH_W.sum()
_TANH_NORM = float(mp.quad(lambda u: mp.tanh(u) ** 2 * mp.exp(-u * u / 2), [-mp.inf, 0, mp.inf])
                   / mp.sqrt(2 * mp.pi))


def _tanh(q, c):
    q, c = float(q), float(c)
    rho = max(min(c / q, 1.0), -1.0)
    s = math.sqrt(q)
    u = _GH_X[:, None]
    v = rho * _GH_X[:, None] + math.sqrt(1 - rho * rho) * _GH_X[None, :]
    w = _GH_W[:, None] * _GH_W[None, :]
    tu, tv = np.tanh(s * u), np.tanh(s * v)
    value = float(np.sum(w * tu * tv)) / _TANH_NORM
    deriv = float(np.sum(w * (1 - tu * tu) * (1 - tv * tv))) / _TANH_NORM
    return mp.mpf(value), mp.mpf(deriv)


BLOCK_MAPS = {"relu": _relu, "erf": _erf, "tanh": _tanh, "trig": _trig}


# ----------------------------------------------------------------------- recursion
def layers(name: str, xi, depth: int, branch_exponent=0.5):
    """(S, 1 - S, K, 1 - K): normalized NNGP and NTK (readout included) after L blocks."""
    V = BLOCK_MAPS[name]
    b = mp.mpf(depth) ** (-2 * mp.mpf(branch_exponent)) if depth else mp.mpf(0)
    x = mp.mpf(xi)
    q, c, T, th = mp.mpf(1), x, mp.mpf(1), x
    for _ in range(depth):
        vxx, dxx = V(q, q)
        vxz, dxz = V(q, c)
        q, c, T, th = q + b * vxx, c + b * vxz, T + b * (vxx + dxx * T), th + b * (vxz + dxz * th)
    S = c / q
    K = (th + c) / (T + q)
    return S, (q - c) / q, K, ((T - th) + (q - c)) / (T + q)


def ode(name: str, xi):
    """(S, K) at depth infinity (gamma = 1/2): solve_ivp, rtol 1e-12, one point."""
    from scipy.integrate import solve_ivp

    V = BLOCK_MAPS[name]

    def rhs(_t, y):
        q, c, T, th = (mp.mpf(float(v)) for v in y)
        vxx, dxx = V(q, q)
        vxz, dxz = V(q, c)
        return [float(vxx), float(vxz), float(vxx + dxx * T), float(vxz + dxz * th)]

    y = solve_ivp(rhs, (0, 1), [1.0, float(xi), 1.0, float(xi)], method="DOP853",
                  rtol=1e-12, atol=1e-14).y[:, -1]
    q, c, T, th = y
    return c / q, (th + c) / (T + q)
