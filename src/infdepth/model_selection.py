"""Model selection for infinitely wide networks: :class:`InfiniteNetworkClassifierCV`
(exact leave-one-out / K-fold search of activation, kernel, depth and ridge) and
:class:`InfiniteNetworkSVC` (the NTK-SVM). Defined in :mod:`infdepth.estimators.cv`."""

from .estimators.cv import (
    DEFAULT_ACTIVATIONS,
    DEFAULT_DEPTHS,
    DEFAULT_RIDGES,
    InfiniteNetworkClassifierCV,
    InfiniteNetworkSVC,
    gram_matrix,
)

__all__ = ["InfiniteNetworkClassifierCV", "InfiniteNetworkSVC", "gram_matrix",
           "DEFAULT_ACTIVATIONS", "DEFAULT_DEPTHS", "DEFAULT_RIDGES"]
