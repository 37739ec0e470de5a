"""infdepth: infinitely wide and infinitely deep neural networks as classifiers."""

from .activations import BUILTIN_ACTIVATIONS, Activation, activation
from .kernels import Kernel, KernelFunction, kernel_function, nngp, ntk

__all__ = [
    "Activation",
    "activation",
    "BUILTIN_ACTIVATIONS",
    "Kernel",
    "KernelFunction",
    "kernel_function",
    "nngp",
    "ntk",
]
__version__ = "0.1.0"
