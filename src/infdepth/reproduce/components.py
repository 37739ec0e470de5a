"""The estimators and activations the experiments use (activations cached per run, so
their kernel tables are built once)."""

from __future__ import annotations

from typing import Any

from ..activations import activation
from ..design import design_activation
from ..estimators import InfiniteNetworkClassifier, SingularKernelClassifier


class MissingComponent(RuntimeError):
    """An optional dependency a section needs (matplotlib) is not installed."""


def network_classifier(act: Any, depth: Any, kernel: str = "ntk") -> InfiniteNetworkClassifier:
    """The infinitely wide network on data already on the sphere, trained to interpolation."""
    return InfiniteNetworkClassifier(activation=act, kernel=kernel, depth=depth, ridge=0.0,
                                     projection=None)


def hilbert_classifier(alpha: float) -> SingularKernelClassifier:
    """The Hilbert kernel estimate ||x - z||^-alpha on data already on the sphere."""
    return SingularKernelClassifier(alpha=alpha, projection=None)


# Activations are cached so that their kernel tables (cached on the Activation object) are
# built once per run, not once per dimension and seed.
_ACTIVATIONS: dict[tuple, Any] = {}


def designed_activation_for(dimension: int) -> Any:
    key = ("designed", dimension)
    if key not in _ACTIVATIONS:
        _ACTIVATIONS[key] = design_activation(dimension=dimension)
    return _ACTIVATIONS[key]


def cached_activation(name: str, **params: Any) -> Any:
    key = (name, *sorted(params.items()))
    if key not in _ACTIVATIONS:
        _ACTIVATIONS[key] = activation(name, **params)
    return _ACTIVATIONS[key]


# ---------------------------------------------------------------------------------------
# Small utilities: progress, tables, files, plots
# ---------------------------------------------------------------------------------------
