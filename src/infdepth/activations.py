"""Activations phi, normalized so that E[phi(u)^2] = 1 for u ~ N(0, 1), and their duals.

An :class:`Activation` pairs a numpy-callable phi with a :class:`~infdepth.duals.Dual`.
Three ways to make one, all flowing into the same object:

* ``activation(name, **params)``: a built-in; where a closed-form dual is known it is
  used as an optimization, otherwise the dual comes from the Hermite series of phi.
* ``Activation.from_callable(fn)``: any vectorized function; its orthonormal Hermite
  coefficients a_k = E[phi(u) He_k(u)] / sqrt(k!) are computed by composite
  Gauss-Legendre quadrature against the Gaussian, and dual(xi) = sum_k a_k^2 xi^k.
* ``Activation.from_dual_coefficients(c)``: the activation whose dual is sum_k c_k xi^k,
  phi = sum_k sqrt(c_k) He_k / sqrt(k!).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from scipy.special import erf, expit

from .duals import ArcsinDual, Dual, ReluFamilyDual, SeriesDual, SinhDual
from .hermite import (
    check_inner_products,
    evaluate_checked,
    hermite_coefficients,
    hermite_series,
    trim_coefficients,
)
from .variance import dual_at_variance, dual_at_variance_derivative, variance_dual

__all__ = ["Activation", "activation", "BUILTIN_ACTIVATIONS", "hermite_coefficients"]

@dataclass(eq=False)
class Activation:
    """A normalized activation phi (E[phi(u)^2] = 1) and its dual.

    Parameters
    ----------
    name : str
        Human-readable name, e.g. ``"relu"`` or ``"sine_family(a=2.676)"``.
    function : callable
        numpy-vectorized phi, already normalized.
    dual_function : Dual
        The dual xi -> E[phi(u) phi(v)], corr(u, v) = xi.
    dual_error : float
        Bound on max |dual - exact dual| over [-1, 1] (0 for closed forms).
    params : dict
        Parameters the activation was built with.
    """

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    dual_function: Dual
    dual_error: float = 0.0
    params: dict = field(default_factory=dict)
    torch_builder: Callable | None = None
    #: Closed form of the dual at other variances (see :mod:`infdepth.variance`):
    #: ``"homogeneous"``, ``("erf", s)``, ``("sine", a)`` or None (the Hermite route).
    variance_form: object = None
    _hermite: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- phi itself
    def __call__(self, x) -> np.ndarray:
        """phi(x), normalized so that E[phi(u)^2] = 1."""
        x = np.asarray(x, dtype=float)
        return evaluate_checked(self.function, x)

    @cached_property
    def hermite_coefficients(self) -> np.ndarray:
        """Orthonormal Hermite coefficients a_k of phi (dual = sum_k a_k^2 xi^k)."""
        if self._hermite is not None:
            return self._hermite
        a, _ = hermite_coefficients(self.function)
        return trim_coefficients(a)

    # ----------------------------------------------------------------- the dual
    def dual(self, xi) -> np.ndarray:
        """dphi(xi) = E[phi(u) phi(v)] for standard normals with correlation xi."""
        return self.dual_function.value(check_inner_products(xi))

    def dual_derivative(self, xi) -> np.ndarray:
        """dphi'(xi) = E[phi'(u) phi'(v)]."""
        return self.dual_function.derivative(check_inner_products(xi))

    def dual_complement(self, delta) -> np.ndarray:
        """1 - dphi(1 - delta), accurate to full relative precision for tiny delta."""
        delta = np.asarray(delta, dtype=float)
        if not np.all(np.isfinite(delta)) or np.any((delta < 0) | (delta > 2)):
            raise ValueError("delta = 1 - xi must be finite and lie in [0, 2]")
        return self.dual_function.complement(delta)

    def dual_at_variance(self, rho, sigma_x: float = 1.0, sigma_z: float | None = None):
        """E[phi(sigma_x u) phi(sigma_z v)], u, v standard normals with corr(u, v) = rho.

        V_phi(q)(x, z) for q_xx = sigma_x^2, q_zz = sigma_z^2 (default sigma_x),
        q_xz = sigma_x sigma_z rho; see :func:`infdepth.variance.dual_at_variance`.
        """
        return dual_at_variance(self, rho, sigma_x, sigma_z)

    def dual_at_variance_derivative(self, rho, sigma_x: float = 1.0,
                                    sigma_z: float | None = None):
        """d/dq_xz of :meth:`dual_at_variance` = E[phi'(sigma_x u) phi'(sigma_z v)]."""
        return dual_at_variance_derivative(self, rho, sigma_x, sigma_z)

    def variance_dual(self, q: float):
        """V_phi at equal variances q as A(q) D_q(rho) (:class:`infdepth.variance.VarianceDual`)."""
        return variance_dual(self, q)

    @property
    def slope_at_one(self) -> float:
        """m = dphi'(1): > 1 repelling, = 1 parabolic, < 1 attracting fixed point at 1."""
        return self.dual_function.slope_at_one

    @property
    def slope_at_zero(self) -> float:
        """c0 = dphi'(0)."""
        return float(self.dual_function.derivative(np.array(0.0)))

    @property
    def value_at_zero(self) -> float:
        """dphi(0) = E[phi(u)]^2."""
        return float(self.dual_function.value(np.array(0.0)))

    # ----------------------------------------------------------------- builders
    @classmethod
    def from_callable(
        cls, fn: Callable[[np.ndarray], np.ndarray], name: str | None = None
    ) -> Activation:
        """Activation from any numpy-vectorized phi; its dual is computed numerically.

        The Hermite coefficients are computed up to degree 512 and trimmed where they
        become negligible. ``dual_error`` bounds the truncation error by
        2 (E[phi^2] - sum_k a_k^2) / E[phi^2] (the true error is smaller for |xi| < 1).
        """
        a, second_moment = hermite_coefficients(fn)
        scale = 1.0 / math.sqrt(second_moment)
        a = a * scale
        tail = max(1.0 - float(np.sum(a * a)), 0.0)
        a = trim_coefficients(a)
        # Rounding of the quadrature limits what the tail can resolve.
        error = 2 * tail + 1e-14
        dual = SeriesDual(a * a, truncated=True)
        return cls(
            name=name or getattr(fn, "__name__", "callable"),
            function=lambda x, _f=fn, _s=scale: _s * _f(x),
            dual_function=dual,
            dual_error=error,
            params={"callable": fn},
            _hermite=a,
        )

    @classmethod
    def from_dual_coefficients(cls, coefficients, name: str | None = None) -> Activation:
        """The activation whose dual is sum_k c_k xi^k (c_k >= 0, normalized to sum 1).

        phi(x) = sum_k sqrt(c_k) He_k(x) / sqrt(k!).
        """
        dual = SeriesDual(coefficients)
        a = np.sqrt(dual.coefficients)
        if name is None:
            terms = [f"{c:.6g} xi^{k}" for k, c in enumerate(dual.coefficients) if c > 0]
            name = "dual(" + " + ".join(terms) + ")"
        return cls(
            name=name,
            function=lambda x, _a=a: hermite_series(x, _a),
            dual_function=dual,
            params={"dual_coefficients": dual.coefficients},
            _hermite=a,
        )

    def torch(self):
        """phi as a ``torch.nn.Module`` (needs the ``torch`` extra); see
        :func:`infdepth.torch_activations.to_torch`."""
        from .torch_activations import to_torch

        return to_torch(self)

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state


# --------------------------------------------------------------------------- built-ins
def _relu_family(alpha: float, beta: float, name: str, params: dict) -> Activation:
    norm = math.sqrt(alpha**2 + beta**2)  # E[(alpha u + beta |u|)^2] = alpha^2 + beta^2
    return Activation(
        name=name,
        function=lambda x: (alpha * x + beta * np.abs(x)) / norm,
        dual_function=ReluFamilyDual(alpha, beta),
        params=params,
        variance_form="homogeneous",
    )


def _relu() -> Activation:
    return _relu_family(0.5, 0.5, "relu", {})


def _leaky_relu(slope: float = 0.01) -> Activation:
    if not np.isfinite(slope):
        raise ValueError("slope must be finite")
    if slope == 1:
        raise ValueError("leaky_relu with slope 1 is linear: its dual is xi at every depth")
    return _relu_family((1 + slope) / 2, (1 - slope) / 2, f"leaky_relu(slope={slope:g})",
                        {"slope": slope})


def _abs() -> Activation:
    return _relu_family(0.0, 1.0, "abs", {})


def _erf(scale: float = 1.0) -> Activation:
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError("erf scale must be a positive finite number")
    b = 2 * scale**2 / (1 + 2 * scale**2)
    norm = math.sqrt(2 / math.pi * math.asin(b))  # E[erf(s u)^2] = (2/pi) arcsin(b)
    name = "erf" if scale == 1 else f"erf(scale={scale:g})"
    return Activation(name=name, function=lambda x: erf(scale * x) / norm,
                      dual_function=ArcsinDual(b), params={"scale": scale},
                      variance_form=("erf", float(scale)))


def _sine_family(a: float) -> Activation:
    """phi(x) = sin(sqrt(a) x) / sqrt((1 - e^{-2a}) / 2), dual sinh(a xi) / sinh(a)."""
    if not (np.isfinite(a) and a > 0):
        raise ValueError("the sine family needs a > 0")
    b = math.sqrt(a)
    norm = math.sqrt(-math.expm1(-2 * a) / 2)
    return Activation(name=f"sine_family(a={a:g})", function=lambda x: np.sin(b * x) / norm,
                      dual_function=SinhDual(a), params={"a": a},
                      variance_form=("sine", float(a)))


def _sin(frequency: float = 1.0) -> Activation:
    if not (np.isfinite(frequency) and frequency != 0):
        raise ValueError("sin frequency must be finite and non-zero")
    act = _sine_family(frequency**2)
    act.name = f"sin(frequency={frequency:g})"
    act.params = {"frequency": frequency}
    return act


def _hermite(degree: int) -> Activation:
    if int(degree) != degree or degree < 0:
        raise ValueError("hermite degree must be a non-negative integer")
    c = np.zeros(int(degree) + 1)
    c[-1] = 1.0
    act = Activation.from_dual_coefficients(c, name=f"hermite(degree={int(degree)})")
    act.params = {"degree": int(degree)}
    return act


def _numerical(fn: Callable, name: str) -> Callable[[], Activation]:
    return lambda: Activation.from_callable(fn, name=name)


def _gelu(x):
    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


BUILTIN_ACTIVATIONS: dict[str, Callable[..., Activation]] = {
    "relu": _relu,
    "leaky_relu": _leaky_relu,
    "abs": _abs,
    "erf": _erf,
    "sin": _sin,
    "sine_family": _sine_family,
    "hermite": _hermite,
    "tanh": _numerical(np.tanh, "tanh"),
    "sigmoid": _numerical(expit, "sigmoid"),
    "gelu": _numerical(_gelu, "gelu"),
    "silu": _numerical(lambda x: x * expit(x), "silu"),
    "softplus": _numerical(lambda x: np.logaddexp(0.0, x), "softplus"),
}


def activation(name: str | Activation, **params) -> Activation:
    """A built-in activation by name (see ``BUILTIN_ACTIVATIONS``), normalized.

    Examples
    --------
    >>> from infdepth import activation
    >>> relu = activation("relu")
    >>> float(relu.dual(1.0))
    1.0
    >>> round(float(activation("sine_family", a=2.676).slope_at_one), 4)
    2.7014
    """
    if isinstance(name, Activation):
        if params:
            raise ValueError("parameters cannot be given with an Activation instance")
        return name
    key = str(name).lower()
    if key not in BUILTIN_ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; built-ins are {sorted(BUILTIN_ACTIVATIONS)}. "
            "Use Activation.from_callable for any other function."
        )
    _check_builtin_params(key, params)
    try:
        cache_key = (key, tuple(sorted(params.items())))
        hash(cache_key)
    except TypeError:
        cache_key = None
    if cache_key is not None and cache_key in _BUILTIN_CACHE:
        return _BUILTIN_CACHE[cache_key]
    try:
        act = BUILTIN_ACTIVATIONS[key](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for activation {name!r}: {exc}") from None
    except (OverflowError, ZeroDivisionError) as exc:
        raise ValueError(f"parameters {params} of activation {name!r} are out of float64's "
                         f"range: {exc}") from None
    if cache_key is not None:  # one instance per built-in, so kernel tables are shared
        _BUILTIN_CACHE[cache_key] = act
    return act


_BUILTIN_CACHE: dict[tuple, Activation] = {}


def not_an_activation(value) -> str:
    """The error message for a value that is neither a built-in name nor an Activation."""
    hint = ""
    if callable(value):
        hint = ("; a function is not an activation by itself: wrap it with "
                "infdepth.Activation.from_callable(fn) (any numpy-vectorized function; "
                "Activation.from_dual_coefficients builds one from a polynomial dual)")
    return (f"activation must be a built-in name (infdepth.BUILTIN_ACTIVATIONS) or an "
            f"infdepth.Activation, got {value!r}{hint}")


def check_informative(act: Activation) -> Activation:
    """ValueError for an activation whose dual is constant (phi constant): its kernels
    are 1 everywhere at every depth >= 1 (the message ``infdepth.limit`` gives too)."""
    if float(act.dual_function.slope_at_one) <= 0:
        raise ValueError(
            f"{act.name}: the dual is constant (phi is constant): every kernel of depth >= 1 "
            "is 1 everywhere and carries no information"
        )
    return act

#: An example value per built-in parameter, for error messages.
_PARAM_EXAMPLES = {"a": 2.676, "slope": 0.1, "scale": 2, "degree": 3, "frequency": 1.5}


def _check_builtin_params(key: str, params: dict) -> None:
    """One clear ValueError for a missing, unknown or non-numeric built-in parameter."""
    import inspect

    signature = inspect.signature(BUILTIN_ACTIVATIONS[key])
    accepted = list(signature.parameters)

    def usage(name: str) -> str:
        example = _PARAM_EXAMPLES.get(name, 1)
        return (f"activation({key!r}, {name}={example}) in Python, "
                f"--param {name}={example} on the command line")

    unknown = [p for p in params if p not in accepted]
    if unknown:
        takes = (f"takes the parameters {accepted}" if accepted
                 else "takes no parameters")
        raise ValueError(f"activation {key!r} {takes}; got {sorted(unknown)}")
    missing = [p for p, v in signature.parameters.items()
               if v.default is inspect.Parameter.empty and p not in params]
    if missing:
        raise ValueError(f"activation {key!r} needs the parameter {missing[0]!r}: "
                         f"{usage(missing[0])}")
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer,
                                                              np.floating)):
            raise ValueError(f"parameter {name!r} of activation {key!r} must be a number, "
                             f"got {value!r} ({usage(name)})")
