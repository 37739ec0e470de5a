"""infdepth: infinitely wide and infinitely deep neural networks as classifiers.

The public names below are imported lazily (PEP 562 module ``__getattr__``): ``import
infdepth`` and the ``infdepth`` command line start without loading scipy or
scikit-learn, and ``infdepth.Kernel`` (or ``from infdepth import Kernel``) imports its
module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    "Activation": "activations",
    "activation": "activations",
    "BUILTIN_ACTIVATIONS": "activations",
    "Kernel": "kernels",
    "KernelFunction": "kernels",
    "kernel_function": "kernels",
    "nngp": "kernels",
    "ntk": "kernels",
    "limit": "taxonomy",
    "limit_predict": "taxonomy",
    "classify": "taxonomy",
    "InfiniteDepthLimit": "taxonomy",
    "design_activation": "design",
    "InfiniteNetworkClassifier": "estimators",
    "InfiniteNetworkClassifierCV": "estimators",
    "InfiniteNetworkSVC": "estimators",
    "SingularKernelClassifier": "estimators",
    "SphereProjection": "estimators",
}

__all__ = [
    "Activation",
    "activation",
    "BUILTIN_ACTIVATIONS",
    "Kernel",
    "KernelFunction",
    "kernel_function",
    "nngp",
    "ntk",
    "limit",
    "limit_predict",
    "classify",
    "InfiniteDepthLimit",
    "design_activation",
    "InfiniteNetworkClassifier",
    "InfiniteNetworkClassifierCV",
    "InfiniteNetworkSVC",
    "SingularKernelClassifier",
    "SphereProjection",
]  # the keys of _EXPORTS, spelled out for static analysis (tests/test_cli.py checks)

if TYPE_CHECKING:  # pragma: no cover - for static analysis and IDEs only
    from .activations import BUILTIN_ACTIVATIONS, Activation, activation
    from .design import design_activation
    from .estimators import (
        InfiniteNetworkClassifier,
        InfiniteNetworkClassifierCV,
        InfiniteNetworkSVC,
        SingularKernelClassifier,
        SphereProjection,
    )
    from .kernels import Kernel, KernelFunction, kernel_function, nngp, ntk
    from .taxonomy import InfiniteDepthLimit, classify, limit, limit_predict


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'infdepth' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
