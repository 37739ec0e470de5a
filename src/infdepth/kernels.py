"""Depth-L NNGP and NTK kernels, L = 0, 1, ... or infinity, at a cost independent of L.

A depth-L kernel is one function of one variable, the inner product xi (THEORY.md
section 3). :class:`KernelFunction` tabulates it once per (activation, kind, depth):

1. accurate values at Chebyshev nodes on unit panels of the variable
   ``s = log((1 - xi) / (1 + xi))``, which resolves the steep regions near xi = +-1
   (down to 1 - |xi| = 1e-40), computed by :func:`~infdepth.dynamics.iterate_depth`;
2. the panel interpolants resampled onto a fine uniform grid as piecewise cubic
   Hermite polynomials of ``log|k|`` (of ``log|k / xi|`` when k(0) = 0), and of
   ``log(1 - k)``;
3. arrays are then evaluated by one table lookup and a cubic per entry, whatever
   the depth.

Points outside the table (1 - |xi| < 1e-40) or in a cell where the kernel changes
sign are evaluated directly by the recursion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev as cheb

from .activations import Activation, activation as _activation
from .dynamics import Attractor, find_attractor, iterate_depth

__all__ = ["KernelFunction", "kernel_function", "nngp", "ntk", "Kernel", "check_depth"]

#: Table range in s = log((1 - xi) / (1 + xi)).
S_MAX = 93.0
PANEL_WIDTH = 1.0
CHEBYSHEV_DEGREE = 16
CELLS_PER_PANEL = 128

_LIMIT_NAMES = {
    "interior": "the majority vote (the Gram matrix tends to xi* J + (1 - xi*) I)",
    "parabolic": "the majority vote, reached only at depths >> (1 - xi)^(-1/2) "
    "(dual'(1) = 1: all kernel values tend to 1 algebraically)",
    "superattracting_zero": "the 1-nearest-neighbour rule (kernel values decay faster than any power)",
    "identity": "a linear model (the dual is xi, the kernel does not change with depth)",
}


def check_depth(depth) -> float | int:
    """Validate a depth: a non-negative integer or ``math.inf``."""
    if isinstance(depth, bool):
        raise ValueError("depth must be a non-negative integer or math.inf, not a bool")
    try:
        value = float(depth)
    except (TypeError, ValueError):
        raise ValueError(f"depth must be a non-negative integer or math.inf, got {depth!r}") from None
    if math.isinf(value) and value > 0:
        return math.inf
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise ValueError(f"depth must be a non-negative integer or math.inf, got {depth!r}")
    return int(value)


def _check_kind(kind: str) -> str:
    if kind not in ("nngp", "ntk"):
        raise ValueError(f"kind must be 'nngp' or 'ntk', not {kind!r}")
    return kind


def _complements(xi, delta=None, eps=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (xi, 1 - xi, 1 + xi); accurate complements may be passed in."""
    xi = np.asarray(xi, dtype=float)
    if not np.all(np.isfinite(xi)):
        raise ValueError("inner products must be finite (got NaN or inf)")
    if np.any(np.abs(xi) > 1 + 1e-12):
        raise ValueError(
            f"inner products must lie in [-1, 1]; got {np.max(np.abs(xi)):.6g}. "
            "Are the inputs unit vectors?"
        )
    xi = np.clip(xi, -1.0, 1.0)
    delta = 1.0 - xi if delta is None else np.clip(np.asarray(delta, dtype=float), 0.0, 2.0)
    eps = 1.0 + xi if eps is None else np.clip(np.asarray(eps, dtype=float), 0.0, 2.0)
    return xi, delta, eps


@dataclass
class _CubicTable:
    """Piecewise cubic Hermite table on a uniform grid of s (columns: c0..c3)."""

    start: float
    step: float
    coefficients: np.ndarray  # (cells, 4)
    usable: np.ndarray  # (cells,) bool: cell interpolates (no sign change, finite)
    constant: np.ndarray  # (cells,) value when the whole cell is -inf (exact zero)

    def __call__(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated values and a mask of the points that must be computed directly."""
        u = (s - self.start) / self.step
        cell = np.floor(u)
        inside = (cell >= 0) & (cell < self.coefficients.shape[0])
        cell = np.where(inside, cell, 0).astype(np.intp)
        t = u - cell
        c = self.coefficients[cell]
        value = ((c[:, 3] * t + c[:, 2]) * t + c[:, 1]) * t + c[:, 0]
        ok = inside & self.usable[cell]
        return value, ~ok


class KernelFunction:
    """The normalized depth-L NNGP or NTK of an activation as a function of xi.

    Values are divided by the value at xi = 1 (1 for the NNGP,
    D_L = sum_{i<=L} dual'(1)^i for the NTK). At ``depth=math.inf`` the function is
    the infinite-depth limit: the Koenigs function h (h(xi) ~ xi near 0, h(1) = inf)
    in the singular class; ``log_complement`` gives psi = lim (1 - S_L) / m^L when
    dual'(1) = m < 1. Other limits raise a ``ValueError`` naming the limiting rule.

    Build with :func:`kernel_function` (cached per activation); evaluate with
    ``k(xi)``, ``k.log(xi)`` (sign, log|k|) or ``k.log_complement(xi)`` (log(1 - k)).
    """

    def __init__(self, act: Activation, kind: str, depth) -> None:
        self.activation = act
        self.kind = _check_kind(kind)
        self.depth = check_depth(depth)
        self.dual = act.dual_function
        self.attractor: Attractor = find_attractor(self.dual)
        if self.depth == math.inf and self.attractor.kind not in ("zero", "one"):
            raise ValueError(
                f"the infinitely deep {kind.upper()} of {act.name} is not a kernel: its "
                f"network becomes {_LIMIT_NAMES[self.attractor.kind]}. Use a finite depth, "
                "or infdepth.limit() for the limiting rule."
            )
        lead = self.dual.leading_term()
        #: k(0) = 0 exactly at every depth when dual(0) = 0: tabulate log|k/xi|.
        self.zero_at_origin = lead.power >= 1
        self._build()

    # ------------------------------------------------------------------ table
    def _direct(self, delta, eps):
        """Direct recursion (exact up to rounding), using the dual's parity for xi < 0."""
        delta = np.asarray(delta, dtype=float)
        eps = np.asarray(eps, dtype=float)
        parity = self.dual.parity
        flip = (delta > eps) & (parity != 0)
        d = np.where(flip, eps, delta)
        e = np.where(flip, delta, eps)
        r = iterate_depth(self.dual, d, e, self.depth, self.kind, self.attractor)
        sign, logabs, logcomp = r.sign, r.logabs, r.log_complement
        if parity == -1 and np.any(flip):
            sign = np.where(flip, -sign, sign)
            # 1 - k(xi) = 1 + k(-xi) for an odd kernel
            with np.errstate(invalid="ignore"):
                mirrored = np.log1p(np.exp(logabs) * np.where(flip, r.sign, 0))
            logcomp = np.where(flip, mirrored, logcomp)
        return sign, logabs, logcomp

    def _build(self) -> None:
        panels = int(round(2 * S_MAX / PANEL_WIDTH))
        edges = np.linspace(-S_MAX, S_MAX, panels + 1)
        nodes_ref = np.cos(np.pi * np.arange(CHEBYSHEV_DEGREE + 1) / CHEBYSHEV_DEGREE)[::-1]
        mid, half = (edges[:-1] + edges[1:]) / 2, np.diff(edges) / 2
        s = (mid[:, None] + half[:, None] * nodes_ref[None, :]).ravel()
        delta, eps = _from_s(s)
        sign, logabs, logcomp = self._direct(delta, eps)
        if self.zero_at_origin:  # tabulate k / xi, which has no zero at xi = 0
            with np.errstate(invalid="ignore"):
                logabs = logabs - _log_abs_xi(s)
            sign = sign * -np.sign(s)
        # fine grid
        step = PANEL_WIDTH / CELLS_PER_PANEL
        t_ref = np.linspace(-1, 1, CELLS_PER_PANEL + 1)
        values = logabs.reshape(panels, CHEBYSHEV_DEGREE + 1)
        comps = logcomp.reshape(panels, CHEBYSHEV_DEGREE + 1)
        signs = sign.reshape(panels, CHEBYSHEV_DEGREE + 1)
        self._value_table = self._fine_table(values, signs, t_ref, half, -S_MAX, step)
        self._sign_cells = np.repeat(signs[:, 0], CELLS_PER_PANEL)
        self._complement_table = self._fine_table(comps, np.ones_like(signs), t_ref, half,
                                                  -S_MAX, step)

    @staticmethod
    def _fine_table(values, signs, t_ref, half, start, step) -> _CubicTable:
        panels, _ = values.shape
        cells = t_ref.size - 1
        coef = np.zeros((panels, cells, 4))
        usable = np.zeros((panels, cells), dtype=bool)
        constant = np.full((panels, cells), np.nan)
        finite = np.all(np.isfinite(values), axis=1)
        same_sign = np.all(signs == signs[:, :1], axis=1) & (signs[:, 0] != 0)
        good = finite & same_sign
        if np.any(good):
            nodes = np.cos(np.pi * np.arange(values.shape[1]) / (values.shape[1] - 1))[::-1]
            c = cheb.chebfit(nodes, values[good].T, values.shape[1] - 1)  # (degree+1, n_good)
            f = cheb.chebval(t_ref, c)  # (n_good, cells+1)
            # derivative with respect to the cell's local variable in [0, 1]
            df = cheb.chebval(t_ref, cheb.chebder(c)) * (t_ref[1] - t_ref[0])
            f0, f1, d0, d1 = f[:, :-1], f[:, 1:], df[:, :-1], df[:, 1:]
            coef[good, :, 0] = f0
            coef[good, :, 1] = d0
            coef[good, :, 2] = 3 * (f1 - f0) - 2 * d0 - d1
            coef[good, :, 3] = 2 * (f0 - f1) + d0 + d1
            usable[good] = True
        all_zero = np.all(np.isneginf(values), axis=1)
        constant[all_zero] = -np.inf
        usable[all_zero] = True
        coef[all_zero, :, 0] = -np.inf
        coef[all_zero, :, 1:] = 0.0
        return _CubicTable(start, step, coef.reshape(-1, 4), usable.ravel(), constant.ravel())

    # ------------------------------------------------------------------ evaluation
    def _log_values(self, xi, delta, eps) -> tuple[np.ndarray, np.ndarray]:
        shape = xi.shape
        xi, delta, eps = xi.ravel(), delta.ravel(), eps.ravel()
        with np.errstate(divide="ignore"):
            s = np.log(delta) - np.log(eps)
        logabs, direct = self._value_table(s)
        cells = np.clip(((s - self._value_table.start) / self._value_table.step).astype(np.intp)
                        if s.size else s.astype(np.intp), 0, self._sign_cells.size - 1)
        sign = self._sign_cells[cells]
        if self.zero_at_origin:
            with np.errstate(divide="ignore"):
                logabs = logabs + np.log(np.abs(xi))
            sign = sign * np.sign(xi)
            direct &= xi != 0
            logabs = np.where(xi == 0, -np.inf, logabs)
            sign = np.where(xi == 0, 0.0, sign)
        at_one = delta == 0
        direct &= ~at_one
        if np.any(direct):
            ds, da, _ = self._direct(delta[direct], eps[direct])
            sign[direct], logabs[direct] = ds, da
        if np.any(at_one):
            sign[at_one] = 1.0
            logabs[at_one] = np.inf if self.depth == math.inf else 0.0
        return sign.reshape(shape), logabs.reshape(shape)

    def log(self, xi, delta=None, eps=None) -> tuple[np.ndarray, np.ndarray]:
        """(sign, log|k(xi)|): the log-domain form, safe at any depth.

        ``delta`` = 1 - xi and ``eps`` = 1 + xi may be given when known more
        accurately than by subtraction (e.g. ||x - z||^2 / 2 for near pairs).
        """
        if self.depth == math.inf and self.attractor.kind == "one":
            raise ValueError(
                f"the infinitely deep kernel of {self.activation.name} is 1 everywhere "
                "(dual'(1) < 1); its information is in log_complement(): psi(xi)"
            )
        return self._log_values(*_complements(xi, delta, eps))

    def __call__(self, xi, delta=None, eps=None) -> np.ndarray:
        """Normalized kernel values k(xi) (they may underflow to 0: see :meth:`log`)."""
        sign, logabs = self.log(xi, delta, eps)
        with np.errstate(under="ignore", over="ignore"):
            return sign * np.exp(logabs)

    def log_complement(self, xi, delta=None, eps=None) -> np.ndarray:
        """log(1 - k(xi)) (log psi(xi) at depth infinity when dual'(1) < 1)."""
        if self.depth == math.inf and self.attractor.kind == "zero":
            raise ValueError("1 - h(xi) is not a useful quantity for the singular limit h")
        xi, delta, eps = _complements(xi, delta, eps)
        shape = xi.shape
        delta, eps = delta.ravel(), eps.ravel()
        with np.errstate(divide="ignore"):
            s = np.log(delta) - np.log(eps)
        out, direct = self._complement_table(s)
        at_one = delta == 0
        direct &= ~at_one
        if np.any(direct):
            out[direct] = self._direct(delta[direct], eps[direct])[2]
        out[at_one] = -np.inf
        return out.reshape(shape)

    def __repr__(self) -> str:
        return f"KernelFunction({self.activation.name!r}, kind={self.kind!r}, depth={self.depth})"


def _from_s(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1 - xi, 1 + xi) from s = log((1 - xi) / (1 + xi)), both accurate."""
    delta = 2 / (1 + np.exp(-s))
    eps = 2 / (1 + np.exp(s))
    return delta, eps


def _log_abs_xi(s: np.ndarray) -> np.ndarray:
    """log|xi| for xi = -tanh(s / 2)."""
    with np.errstate(divide="ignore"):
        return np.log(np.abs(np.tanh(s / 2)))


def kernel_function(act, kind: str = "ntk", depth=1) -> KernelFunction:
    """The cached :class:`KernelFunction` of an activation (name or Activation)."""
    act = _activation(act) if isinstance(act, str) else act
    if not isinstance(act, Activation):
        raise TypeError("activation must be a name or an infdepth.Activation")
    key = (_check_kind(kind), check_depth(depth))
    table = act._cache.get(key)
    if table is None:
        table = KernelFunction(act, *key)
        act._cache[key] = table
    return table


def nngp(xi, activation, depth, *, log: bool = False):
    """Normalized NNGP S_L(xi) of depth L (L = math.inf: the Koenigs limit h).

    Parameters
    ----------
    xi : array_like
        Inner products in [-1, 1].
    activation : str or Activation
    depth : int or math.inf
    log : bool
        Return ``(sign, log|S_L|)`` instead of values (never under- or overflows).
    """
    k = kernel_function(activation, "nngp", depth)
    return k.log(xi) if log else k(xi)


def ntk(xi, activation, depth, *, log: bool = False):
    """Normalized NTK K_L(xi) / K_L(1) of depth L (L = math.inf: the same limit h).

    See :func:`nngp` for the parameters.
    """
    k = kernel_function(activation, "ntk", depth)
    return k.log(xi) if log else k(xi)
