"""infdepth: infinitely wide and infinitely deep neural networks as classifiers."""

from .activations import BUILTIN_ACTIVATIONS, Activation, activation

__all__ = ["Activation", "activation", "BUILTIN_ACTIVATIONS"]
__version__ = "0.1.0"
