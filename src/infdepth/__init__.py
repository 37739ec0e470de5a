"""infdepth: infinitely wide and infinitely deep neural networks as classifiers."""

from .activations import BUILTIN_ACTIVATIONS, Activation, activation
from .design import design_activation
from .estimators import InfiniteNetworkClassifier, SingularKernelClassifier, SphereProjection
from .kernels import Kernel, KernelFunction, kernel_function, nngp, ntk
from .taxonomy import InfiniteDepthLimit, classify, limit, limit_predict

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
    "SingularKernelClassifier",
    "SphereProjection",
]
__version__ = "0.1.0"
