"""SingularKernelClassifier: the Hilbert / Devroye kernel estimate."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from .base import SphereClassifier
from .compiled import FAST_MIN_TRAIN, compiled_kernels
from .geometry import row_block
from .rules import VoteWeights


# =========================================================================== Hilbert rule
class SingularKernelClassifier(SphereClassifier):
    """The Hilbert kernel rule: weights ``||x - x_i||^(-alpha)`` on the sphere.

    ``predict`` takes the class with the largest total weight; ``predict_proba`` is the
    normalized weight of each class, ``sum_{i in c} w_i / sum_i w_i``, computed in the log
    domain (no overflow for any alpha). A test point equal to training points gets the
    mean of their one-hot labels (the weight is infinite there), computed exactly. With
    ``alpha`` equal to the dimension of the data's support the rule is consistent
    (Devroye, Györfi, Krzyżak 1998), the limit of suitably designed infinitely deep
    networks (docs/theory.md section 5).

    Parameters
    ----------
    alpha : float or "auto", default="auto"
        The exponent. "auto" uses the intrinsic dimension of the training data on the
        sphere estimated by scikit-dimension's TwoNN (``pip install scikit-dimension``),
        on at most ``max_id_samples`` distinct points.
    projection : "auto", None or transformer, default="auto"
        As for :class:`InfiniteNetworkClassifier`.
    max_id_samples : int, default=5000
    random_state : int, RandomState or None, default=None
        Subsampling for the intrinsic-dimension estimate.

    Attributes
    ----------
    alpha_ : float
        The exponent used.
    intrinsic_dimension_ : float or None
        The TwoNN estimate when ``alpha="auto"``.
    classes_, n_features_in_, projection_, X_fit_, y_fit_ : as for
        :class:`InfiniteNetworkClassifier`.
    """

    _parameter_constraints: dict = {
        "alpha": [StrOptions({"auto"}), Interval(numbers.Real, 0, None, closed="neither")],
        "projection": [StrOptions({"auto"}), None, HasMethods(["fit", "transform"])],
        "max_id_samples": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "dtype": [StrOptions({"float64", "float32"})],
        "device": "no_validation",  # a str or torch.device: checked by the torch backend
    }

    def __init__(self, alpha="auto", projection="auto", max_id_samples=5000, random_state=None,
                 dtype="float64", device=None):
        self.alpha = alpha
        self.projection = projection
        self.max_id_samples = max_id_samples
        self.random_state = random_state
        self.dtype = dtype
        self.device = device

    def fit(self, X, y):
        """Store the training set and choose alpha."""
        self._validate_params()
        alpha = self.alpha
        if isinstance(alpha, str):
            if alpha != "auto":
                raise ValueError(f"alpha must be a positive number or 'auto', got {alpha!r}")
        elif isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not (
            math.isfinite(alpha) and alpha > 0
        ):
            raise ValueError(f"alpha must be a positive finite number or 'auto', got {alpha!r}")
        self._fit_common(X, y)
        self.intrinsic_dimension_ = None
        if alpha == "auto":
            self.intrinsic_dimension_ = intrinsic_dimension(
                self.X_fit_, self.max_id_samples, self.random_state
            )
            alpha = self.intrinsic_dimension_
        self.alpha_ = float(alpha)
        self.rule_ = "hilbert"
        return self

    def _block_rows(self, n_train):
        if self.device is None and compiled_kernels() is not None and (
                n_train >= FAST_MIN_TRAIN or self.dtype == "float32"):
            return 4096  # the compiled pass keeps no block-sized temporaries
        return row_block(n_train)

    def _outputs_block(self, Q):
        half = self.alpha_ / 2

        def log_weight(xi, delta, eps):
            with np.errstate(divide="ignore"):
                return np.ones_like(delta), -half * np.log(2.0 * delta)

        return self._vote_outputs(Q, VoteWeights(log_weight, 0, ("hilbert", self.alpha_)))


def intrinsic_dimension(X, max_samples, random_state) -> float:
    try:
        import skdim
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError(
            "alpha='auto' estimates the intrinsic dimension with scikit-dimension: "
            "pip install scikit-dimension (or infdepth[dimension]), or give alpha explicitly"
        ) from exc
    from sklearn.utils import check_random_state

    points = np.unique(X, axis=0)
    if isinstance(max_samples, bool) or not isinstance(max_samples, numbers.Integral) or (
        max_samples < 3
    ):
        raise ValueError(f"max_id_samples must be an integer >= 3, got {max_samples!r}")
    if points.shape[0] > max_samples:
        rng = check_random_state(random_state)
        points = points[rng.choice(points.shape[0], max_samples, replace=False)]
    fallback = float(max(X.shape[1] - 1, 1))
    if points.shape[0] < 3:
        return fallback
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            dim = float(skdim.id.TwoNN().fit(points).dimension_)
        except Exception:  # noqa: BLE001 - degenerate samples: fall back below
            dim = float("nan")
    if not (math.isfinite(dim) and dim > 0):
        return fallback
    return dim
