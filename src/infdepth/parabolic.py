"""Depth jumps at a parabolic fixed point: the Fatou coordinate (docs/theory.md, section 7).

When dual(1) = 1 and dual'(1) = 1 (ReLU, leaky ReLU, abs, and every polynomial dual with
sum_k k c_k = 1) the complement delta_l = 1 - S_l obeys delta_{l+1} = g(delta_l) with
g(delta) = 1 - dual(1 - delta), and 0 is a parabolic fixed point of g: delta_L decays
like 1/L^2 (ReLU family) or 1/L (analytic duals), so no linear regime is ever reached
and the hyperbolic jumps of :mod:`infdepth.dynamics` do not apply.

In the variable x = delta^(1/p) (p = 2 for the ReLU family, whose g is a series in
delta^(1/2); p = 1 for analytic duals) the map is x -> f(x) = x + b_2 x^2 + b_3 x^3 + ...
with b_2 < 0, and it has a Fatou (Abel) coordinate

    Phi(f(x)) = Phi(x) + 1,   Phi(x) = A / x + kappa log x + sum_{k=1}^N phi_k x^k,

whose coefficients follow from a triangular linear system (:func:`fatou_series`).
Then, after n exact layers have brought every point to x_n <= x_star,

* NNGP: x_L = Phi^-1(Phi(x_n) + L - n), delta_L = x_L^p;
* NTK: with V(x) = dPhi/d(delta) (so that dual'(S_l) = V_l / V_{l+1}), the recursion
  K_{l+1} = S_{l+1} + K_l dual'(S_l) becomes K_{l+1} V_{l+1} = K_l V_l + S_{l+1} V_{l+1},
  hence K_L V_L = K_n V_n + sum_{l=n+1}^L (1 - delta_l) V_l, and the complement
  E_L = (L + 1) - K_L satisfies
  E_L V_L = E_n V_n + n (V_L - V_n) + sum_{l=n}^L (V_L - V_l) + sum_{l=n+1}^L delta_l V_l,
  every term of one sign (no cancellation, also when delta_0 is tiny).

The sums run over the orbit w_l = w_n + (l - n) in Fatou time and are evaluated by the
Euler-Maclaurin formula (terms to B_10; the remainder is O(w_n^-11), w_n >= A / x_star),
whose integrals are computed by composite Gauss-Legendre quadrature in y = log(x_n / x)
(no inversion of Phi at the nodes) and whose endpoint derivatives d^j/dw^j come from
Laurent series in x (d/dw = (1 / Phi'(x)) d/dx). The cost is independent of L.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .series import pad as _pad
from .series import series_exp as _series_exp
from .series import series_inv as _series_inv
from .series import series_log1p as _series_log1p
from .series import series_mul as _series_mul

__all__ = ["FatouCoordinate", "fatou_coordinate", "fatou_series"]

#: Number of Fatou coefficients phi_1..phi_N kept.
FATOU_TERMS = 28
#: The neglected terms |phi_k| x^k (k > N - 3) are below this fraction of A / x at x_star.
FATOU_TOLERANCE = 1e-18
#: Largest x_star tried (then multiplied by 0.8 until the tail criterion holds).
X_START = 0.5
#: Gauss-Legendre nodes per panel and the widest panel in y = log(x_n / x).
GAUSS_NODES = 12
PANEL_WIDTH_Y = 1.5
#: Euler-Maclaurin coefficients B_{2k} / (2k)!, k = 1, ..., 5.
EULER_MACLAURIN = (1.0 / 12.0, -1.0 / 720.0, 1.0 / 30240.0, -1.0 / 1209600.0,
                   1.0 / 47900160.0)


@dataclass(frozen=True)
class _Laurent:
    """sum_i c[i] x^(low + i), truncated after len(c) terms."""

    low: int
    c: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.polynomial.polynomial.polyval(x, self.c) * x**float(self.low)

    def integral_along(self, x_n: np.ndarray, y_end: np.ndarray) -> np.ndarray:
        """int_0^Y F(x_n e^-y) dy in closed form: sum_j c_j x_n^j (1 - e^(-j Y)) / j."""
        total = np.zeros_like(x_n)
        for i, c in enumerate(self.c):
            j = self.low + i
            if j == 0:
                total = total + c * y_end
            else:
                total = total + c * x_n**float(j) * (-np.expm1(-j * y_end)) / j
        return total

    def __mul__(self, other: _Laurent) -> _Laurent:
        size = min(self.c.size, other.c.size)
        return _Laurent(self.low + other.low, _series_mul(self.c, other.c, size))

    def derivative(self) -> _Laurent:
        return _Laurent(self.low - 1, self.c * (self.low + np.arange(self.c.size)))

    def shift(self, power: int) -> _Laurent:
        return _Laurent(self.low + power, self.c)

    def __neg__(self) -> _Laurent:
        return _Laurent(self.low, -self.c)


# ------------------------------------------------------------------ the coordinate
def fatou_series(f: np.ndarray, terms: int = FATOU_TERMS) -> np.ndarray:
    """(A, kappa, phi_1, ..., phi_N) of the Fatou coordinate of x -> f(x).

    ``f[j]`` is the coefficient of x^j (f[0] = 0, f[1] = 1, f[2] < 0). Writing
    f(x) = x (1 + r(x)), the equation Phi(f) - Phi = 1 reads, order by order in x,
    A q(x) + kappa log(1 + r(x)) + sum_k phi_k x^k ((1 + r)^k - 1) = 1 with
    q = (1 / (1 + r) - 1) / x. Order 0 gives A = -1 / f[2], order 1 gives kappa and
    order j + 1 gives phi_j: a lower-triangular system.
    """
    size = terms + 4
    f = _pad(f, size + 2)
    if f[0] != 0 or f[1] != 1 or not f[2] < 0:
        raise ValueError("a parabolic germ needs f(x) = x + b x^2 + ... with b < 0")
    r = f[1:size + 1].copy()
    r[0] = 0.0
    one_plus = r.copy()
    one_plus[0] = 1.0
    q = _series_inv(one_plus, size + 1)[1:size + 1]  # (1/(1+r) - 1)/x
    log_r = _series_log1p(r, size)
    columns = [q[: terms + 2], log_r[: terms + 2]]
    for k in range(1, terms + 1):
        t = _series_exp(k * log_r, size)
        t[0] -= 1.0
        columns.append(_pad(np.concatenate([np.zeros(k), t]), terms + 2))
    matrix = np.array(columns).T
    rhs = np.zeros(terms + 2)
    rhs[0] = 1.0
    return np.linalg.solve(matrix, rhs)


class FatouCoordinate:
    """The Fatou coordinate of g(delta) = 1 - dual(1 - delta) at its parabolic point 0.

    Parameters
    ----------
    power : int
        p with x = delta^(1/p) (2: half-integer expansion, 1: analytic).
    g_series : ndarray
        Coefficients a_j of g(x^p) = sum_j a_j x^j.
    """

    def __init__(self, power: int, g_series: np.ndarray, terms: int = FATOU_TERMS) -> None:
        if power not in (1, 2):
            raise ValueError("only expansions in delta or delta^(1/2) are supported")
        self.power = power
        size = terms + 8
        a = _pad(g_series, size + power)
        if power == 1:
            f = a[:size]
        else:  # f(x) = sqrt(g(x^2)) = x sqrt(a(x) / x^2)
            h = a[2: size + 2].copy()
            h0 = h[0]
            h[0] = 0.0
            f = np.concatenate([[0.0], _series_exp(_series_log1p(h / h0, size) / 2, size - 1)])
            f *= math.sqrt(h0)
        self.map_series = f
        coef = fatou_series(f, terms)
        self.A, self.kappa, self.phi = float(coef[0]), float(coef[1]), coef[2:]
        k = np.arange(1, terms + 1)
        # x_star: the neglected tail (the last three terms' size) below FATOU_TOLERANCE A/x
        tail = np.abs(self.phi[-3:])
        x = X_START
        while np.any(tail * x ** (k[-3:] + 1.0) > FATOU_TOLERANCE * self.A) and x > 1e-6:
            x *= 0.8
        self.x_star = x
        self.delta_star = x**power
        # Laurent series in x of the quantities the jump needs
        n = terms + 2
        dphi = np.concatenate([[-self.A, self.kappa], k * self.phi])  # Phi'(x), low -2
        self._dphi = _Laurent(-2, dphi[:n])
        inv = _series_inv(-self._dphi.c / self.A, n) / (-self.A)  # 1/Phi'(x) = x^2 (...)
        self._dx_dw = _Laurent(2, inv)
        # V = dPhi/d delta = Phi'(x) / (p x^(p-1))
        self._V = _Laurent(-2 - (power - 1), dphi[:n] / power)
        delta = _Laurent(power, np.eye(1, n)[0])
        one_minus = _Laurent(0, np.eye(1, n)[0] - np.eye(1, n, power)[0])
        self._F1 = one_minus * self._V  # (1 - delta) V
        self._F2 = delta * self._V  # delta V
        speed = (-self._dphi).shift(1)  # dw/dy = -Phi'(x) x for x = x_n e^-y
        self._P1, self._P2 = self._F1 * speed, self._F2 * speed
        self._P4 = -(self._V.derivative().shift(1))  # dV/dy
        self._odd_derivatives = {
            name: self._w_derivatives(series) for name, series in
            (("F1", self._F1), ("F2", self._F2), ("V", self._V))
        }

    def _w_derivatives(self, series: _Laurent) -> list[_Laurent]:
        """d/dw, d^3/dw^3, ..., d^9/dw^9 of a function of x along the orbit."""
        out, current = [], series
        for order in range(1, 2 * len(EULER_MACLAURIN)):
            current = self._dx_dw * current.derivative()
            if order % 2:
                out.append(current)
        return out

    # --------------------------------------------------------------- evaluation
    def phi_difference(self, x_n: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Phi(x_n e^-y) - Phi(x_n) >= 0, without cancellation."""
        out = self.A / x_n * np.expm1(y) - self.kappa * y
        for k, phi_k in enumerate(self.phi, start=1):
            out = out + phi_k * x_n**k * np.expm1(-k * y)
        return out

    def log_ratio(self, x_n: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """y = log(x_n / x_L) with Phi(x_L) = Phi(x_n) + steps (Newton on log of the gap)."""
        steps = np.asarray(steps, dtype=float)
        y = np.log1p(steps * x_n / self.A)
        log_target = np.log(steps)
        for _ in range(50):  # quadratic convergence: about 5 iterations
            x = x_n * np.exp(-y)
            gap = self.phi_difference(x_n, y)
            slope = -self._dphi(x) * x / gap  # d log(gap) / dy
            step = (np.log(gap) - log_target) / slope
            y = y - step
            if np.all(np.abs(step) <= 1e-13 * y):
                break
        return y - (np.log(self.phi_difference(x_n, y)) - log_target) / slope

    def _moment(self, x_n: np.ndarray, y_end: np.ndarray) -> np.ndarray:
        """int (w - w_n) dV = int_0^Y (Phi(x) - Phi(x_n)) dV/dy dy, by Gauss-Legendre.

        The integrand grows like e^(3y) (p = 1) or e^(5y) (p = 2): the part below
        Y - 42 / growth contributes less than e^-42 = 6e-19 of the total and is skipped.
        """
        start = np.maximum(y_end - 42.0 / (2 * self.power + 1), 0.0)
        width = y_end - start
        panels = max(1, int(math.ceil(float(np.max(width)) / PANEL_WIDTH_Y)))
        t, wt = np.polynomial.legendre.leggauss(GAUSS_NODES)
        edges = np.linspace(0.0, 1.0, panels + 1)
        frac = ((edges[:-1, None] + edges[1:, None]) / 2 + t[None, :] / (2 * panels)).ravel()
        weights = np.tile(wt / (2 * panels), panels)
        y = start[:, None] + width[:, None] * frac[None, :]
        x = x_n[:, None] * np.exp(-y)
        tail = np.polynomial.polynomial.polyval(x, np.concatenate([[0.0], self.phi]))
        tail_n = np.polynomial.polynomial.polyval(x_n, np.concatenate([[0.0], self.phi]))
        gap = self.A / x_n[:, None] * np.expm1(y) - self.kappa * y + (tail - tail_n[:, None])
        return np.sum(self._P4(x) * gap * weights[None, :], axis=1) * width

    def jump(self, delta_n, steps, k_n=None, e_n=None, n=None):
        """The state after ``steps`` more layers from delta_n <= delta_star.

        Returns (log delta_L, log k_L, log e_L): for the NTK (``k_n``, ``e_n``: the
        normalized NTK and its complement at layer ``n``, normalization D_n = n + 1)
        the last two are normalized by D_L = n + steps + 1; they are None for the NNGP.
        """
        x_n = np.asarray(delta_n, dtype=float) ** (1.0 / self.power)
        y_end = self.log_ratio(x_n, steps)
        log_delta = self.power * (np.log(x_n) - y_end)
        if k_n is None:
            return log_delta, None, None
        x_L = x_n * np.exp(-y_end)
        I1 = self._P1.integral_along(x_n, y_end)
        I2 = self._P2.integral_along(x_n, y_end)
        I4 = self._P4.integral_along(x_n, y_end)  # V_L - V_n
        I3 = self._moment(x_n, y_end)
        d = self._odd_derivatives

        def euler_maclaurin(name, integral, f_end, f_start, sign=1.0):
            total = integral + (f_end - f_start) / 2
            for c, deriv in zip(EULER_MACLAURIN, d[name], strict=True):
                total = total + sign * c * (deriv(x_L) - deriv(x_n))
            return total

        V_n, V_L = self._V(x_n), self._V(x_L)
        K_n = (n + 1) * np.asarray(k_n, dtype=float)
        E_n = (n + 1) * np.asarray(e_n, dtype=float)
        S1 = euler_maclaurin("F1", I1, self._F1(x_L), self._F1(x_n))
        S2 = euler_maclaurin("F2", I2, self._F2(x_L), self._F2(x_n))
        # sum_{l=n}^{L} (V_L - V_l): F = V_L - V, F(start) = -I4, F(end) = 0, F' = -V'
        S3 = I3 + I4 / 2 - sum(
            c * (deriv(x_L) - deriv(x_n)) for c, deriv in zip(EULER_MACLAURIN, d["V"],
                                                                strict=True)
        )
        K_L = (K_n * V_n + S1) / V_L
        E_L = (E_n * V_n + n * I4 + S3 + S2) / V_L
        log_D = np.log(n + 1 + np.asarray(steps, dtype=float))
        return log_delta, np.log(K_L) - log_D, np.log(E_L) - log_D


def fatou_coordinate(dual) -> FatouCoordinate:
    """The (cached) Fatou coordinate of a parabolic dual, from its expansion near 1."""
    cached = getattr(dual, "_fatou_coordinate", None)
    if cached is None:
        power, series = dual.parabolic_expansion(FATOU_TERMS + 12)
        cached = FatouCoordinate(power, series)
        dual._fatou_coordinate = cached
    return cached
