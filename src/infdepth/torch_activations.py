"""PyTorch versions of :class:`~infdepth.activations.Activation` (optional ``torch`` extra).

:func:`to_torch` turns an activation into an ``nn.Module`` that computes exactly the
normalized phi of the numpy version (E[phi(u)^2] = 1 for u ~ N(0, 1)), differentiably,
in any floating dtype and on any device:

* built-ins are written in closed form with the same normalization constants as
  :mod:`infdepth.activations` (ReLU family ``(alpha x + beta |x|) / sqrt(alpha^2 + beta^2)``,
  ``erf(s x) / sqrt((2/pi) arcsin(2 s^2 / (1 + 2 s^2)))``,
  ``sin(sqrt(a) x) / sqrt((1 - e^{-2a}) / 2)``, and ``tanh``, ``sigmoid``, ``gelu``,
  ``silu``, ``softplus`` times ``1 / sqrt(E[f(u)^2])`` computed by the very quadrature
  the numpy version uses);
* designed activations (``Activation.from_dual_coefficients``, ``hermite``) are evaluated
  from their orthonormal Hermite series ``sum_k a_k He_k(x) / sqrt(k!)`` by the stable
  three-term recurrence ``h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k + 1)``;
* ``Activation.from_callable(fn)`` activations call ``fn`` on torch tensors, which works
  when ``fn`` is written with operations that torch tensors support (arithmetic,
  ``abs``, ``**``, tensor methods); numpy ufuncs such as ``np.tanh`` do not propagate
  gradients, and such a callable is rejected with a ``ValueError``.

Every module is checked against the numpy phi on a grid of points before it is returned,
so a module that does not compute the same function is never handed out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .activations import Activation, hermite_coefficients
from .activations import activation as _activation

__all__ = [
    "to_torch",
    "TorchActivation",
    "ReluFamily",
    "ScaledErf",
    "ScaledSine",
    "ScaledFunction",
    "HermiteSeries",
]

#: Points where every torch module is compared with the numpy phi before it is returned.
_CHECK_POINTS = np.concatenate([np.linspace(-8.0, 8.0, 161), [-0.123456789, 0.3183, 2.71828]])
#: Relative tolerance of that comparison (float64); rounding differences are ~1e-15.
_CHECK_TOLERANCE = 1e-9

def _gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.special.erf(x / math.sqrt(2)))


def _silu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def _softplus(x: torch.Tensor) -> torch.Tensor:
    # log(1 + e^x) exactly as numpy's logaddexp(0, x) (F.softplus switches to x above 20).
    return torch.logaddexp(torch.zeros_like(x), x)


#: Un-normalized torch counterparts of the numerically normalized built-ins (module-level
#: functions, so the modules pickle).
_TORCH_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": _gelu,
    "silu": _silu,
    "softplus": _softplus,
}


class TorchActivation(nn.Module):
    """Base class: an elementwise normalized activation phi with E[phi(u)^2] = 1."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def extra_repr(self) -> str:
        return repr(self.name)


class ReluFamily(TorchActivation):
    """phi(x) = (alpha x + beta |x|) / sqrt(alpha^2 + beta^2): ReLU, leaky ReLU, abs."""

    def __init__(self, alpha: float, beta: float, name: str = "relu_family") -> None:
        super().__init__(name)
        self.alpha, self.beta = float(alpha), float(beta)
        self.norm = math.sqrt(self.alpha**2 + self.beta**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha * x + self.beta * torch.abs(x)) / self.norm


class ScaledErf(TorchActivation):
    """phi(x) = erf(s x) / sqrt((2/pi) arcsin(b)), b = 2 s^2 / (1 + 2 s^2)."""

    def __init__(self, scale: float = 1.0, name: str = "erf") -> None:
        super().__init__(name)
        self.scale = float(scale)
        b = 2 * self.scale**2 / (1 + 2 * self.scale**2)
        self.norm = math.sqrt(2 / math.pi * math.asin(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.erf(self.scale * x) / self.norm


class ScaledSine(TorchActivation):
    """phi(x) = sin(sqrt(a) x) / sqrt((1 - e^{-2a}) / 2), whose dual is sinh(a xi) / sinh(a)."""

    def __init__(self, a: float, name: str = "sine_family") -> None:
        super().__init__(name)
        self.a = float(a)
        self.frequency = math.sqrt(self.a)
        self.norm = math.sqrt(-math.expm1(-2 * self.a) / 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.frequency * x) / self.norm


class ScaledFunction(TorchActivation):
    """phi(x) = c f(x) for a torch-expressible f and the normalization c = E[f(u)^2]^(-1/2)."""

    def __init__(
        self, function: Callable[[torch.Tensor], torch.Tensor], scale: float, name: str = "callable"
    ) -> None:
        super().__init__(name)
        self.function = function
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.function(x)


class HermiteSeries(TorchActivation):
    """phi(x) = sum_k a_k He_k(x) / sqrt(k!) (orthonormal Hermite series; dual sum_k a_k^2 xi^k).

    Evaluated by the recurrence h_0 = 1, h_1 = x,
    h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k + 1), in the input's dtype; the
    coefficients are plain Python floats, so the module has no buffers to move between
    devices and is differentiable to any order.
    """

    def __init__(self, coefficients: Sequence[float], name: str = "hermite_series") -> None:
        super().__init__(name)
        a = np.asarray(coefficients, dtype=float).ravel()
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError("Hermite coefficients must be a non-empty array of finite numbers")
        self.coefficients: tuple[float, ...] = tuple(float(v) for v in a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.coefficients
        h_prev, h = torch.zeros_like(x), torch.ones_like(x)
        out = a[0] * h
        for k in range(1, len(a)):
            h_prev, h = h, (x * h - math.sqrt(k - 1) * h_prev) / math.sqrt(k)
            out = out + a[k] * h
        return out

    def extra_repr(self) -> str:
        return f"{self.name!r}, degree={len(self.coefficients) - 1}"


def _callable_scale(fn: Callable) -> float:
    """1 / sqrt(E[fn(u)^2]) computed exactly as ``Activation.from_callable`` computes it."""
    _, second_moment = hermite_coefficients(fn)
    return 1.0 / math.sqrt(second_moment)


def _builtin_module(act: Activation) -> nn.Module | None:
    """Closed-form module for a built-in activation, or None if ``act`` is not one."""
    name, params = act.name, act.params
    if name == "relu" and not params:
        return ReluFamily(0.5, 0.5, name)
    if name == "abs" and not params:
        return ReluFamily(0.0, 1.0, name)
    if name.startswith("leaky_relu") and set(params) == {"slope"}:
        slope = params["slope"]
        return ReluFamily((1 + slope) / 2, (1 - slope) / 2, name)
    if (name == "erf" or name.startswith("erf(")) and set(params) == {"scale"}:
        return ScaledErf(params["scale"], name)
    if name.startswith("sine_family") and set(params) == {"a"}:
        return ScaledSine(params["a"], name)
    if name.startswith("sin(") and set(params) == {"frequency"}:
        return ScaledSine(params["frequency"] ** 2, name)
    if name.startswith("hermite(") and set(params) == {"degree"}:
        return HermiteSeries(act.hermite_coefficients, name)
    if name in _TORCH_FUNCTIONS and set(params) == {"callable"}:
        return ScaledFunction(_TORCH_FUNCTIONS[name], _callable_scale(params["callable"]), name)
    return None


def _probe(module: Callable[[torch.Tensor], torch.Tensor], act: Activation) -> str | None:
    """Why ``module`` does not compute ``act`` differentiably in torch (None if it does)."""
    x = torch.tensor(_CHECK_POINTS, dtype=torch.float64, requires_grad=True)
    try:
        with warnings.catch_warnings(), torch.enable_grad():
            warnings.simplefilter("ignore")
            y = module(x)
    except Exception as exc:  # any failure means "not torch-expressible"
        return f"calling it on a torch tensor raised {type(exc).__name__}: {exc}"
    if not isinstance(y, torch.Tensor):
        return f"it returned {type(y).__name__}, not a torch.Tensor"
    if y.shape != x.shape:
        return f"it returned shape {tuple(y.shape)} for input shape {tuple(x.shape)}"
    if not y.requires_grad:
        return "its output does not depend differentiably on the input (no autograd graph)"
    expected = act(_CHECK_POINTS)
    got = y.detach().to(torch.float64).cpu().numpy()
    error = np.abs(got - expected) / np.maximum(1.0, np.abs(expected))
    if not np.all(np.isfinite(got)) or np.max(error) > _CHECK_TOLERANCE:
        return (
            "it does not reproduce the numpy activation (largest relative difference "
            f"{np.nanmax(error):.3g} on [-8, 8])"
        )
    return None


def _wrap(builder_output: object, name: str) -> nn.Module:
    if isinstance(builder_output, nn.Module):
        return builder_output
    if callable(builder_output):
        return ScaledFunction(builder_output, 1.0, name)
    raise ValueError(f"torch_builder of activation {name!r} must return an nn.Module or callable")


def to_torch(
    act: Activation | str,
    function: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> nn.Module:
    """An ``nn.Module`` computing the normalized activation phi of ``act`` in torch.

    Parameters
    ----------
    act : Activation or str
        The activation (a built-in name is resolved with :func:`infdepth.activation`).
    function : callable, optional
        A torch implementation to use instead of the automatic one. For an activation
        made by ``Activation.from_callable(fn)`` it must compute the same raw ``fn``
        (the normalization 1 / sqrt(E[fn(u)^2]) is applied here); for any other
        activation it must compute phi itself.

    Returns
    -------
    torch.nn.Module
        Elementwise, differentiable, dtype- and device-agnostic; its output agrees with
        ``act(x)`` to rounding (checked on [-8, 8] before returning).

    Raises
    ------
    ValueError
        If phi cannot be expressed in torch (e.g. a callable built from numpy ufuncs).

    Notes
    -----
    An explicit ``function``, else ``act.torch_builder()`` if set (a zero-argument
    callable returning a module or a torch function for phi), is the only candidate.
    Otherwise the first of these that reproduces phi is used: the closed form of a
    built-in; the Hermite series of an activation made by
    ``Activation.from_dual_coefficients``; the activation's callable applied to tensors.
    """
    act = _activation(act)
    candidates: list[tuple[str, Callable[[], nn.Module | None]]] = []
    callable_fn = act.params.get("callable")
    if function is not None:
        if callable_fn is not None:
            candidates.append(("the given torch function", lambda: ScaledFunction(
                function, _callable_scale(callable_fn), act.name)))
        else:
            candidates.append(("the given torch function",
                               lambda: ScaledFunction(function, 1.0, act.name)))
    elif act.torch_builder is not None:
        candidates.append(("torch_builder", lambda: _wrap(act.torch_builder(), act.name)))
    else:
        candidates.append(("closed form", lambda: _builtin_module(act)))
        if "dual_coefficients" in act.params:
            candidates.append(("Hermite series",
                               lambda: HermiteSeries(act.hermite_coefficients, act.name)))
        if callable_fn is not None:
            candidates.append(("callable", lambda: ScaledFunction(
                callable_fn, _callable_scale(callable_fn), act.name)))

    reasons = []
    for label, build in candidates:
        module = build()
        if module is None:
            continue
        reason = _probe(module, act)
        if reason is None:
            return module
        reasons.append(f"{label}: {reason}")
    detail = "; ".join(reasons) if reasons else "no torch implementation is known for it"
    raise ValueError(
        f"activation {act.name!r} cannot be expressed in torch ({detail}). Write its "
        "callable with operations that work on numpy arrays and torch tensors alike "
        "(arithmetic, abs, **, e.g. lambda x: x / (1 + abs(x))) instead of numpy ufuncs, "
        "pass a torch implementation with to_torch(act, function=...) (e.g. "
        "lambda x: x * torch.sigmoid(x)), or build it from its dual with "
        "Activation.from_dual_coefficients(act.dual_function.coefficients)."
    )
