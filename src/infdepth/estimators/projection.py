"""SphereProjection: standardize, append a bias coordinate, normalize the rows."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import (
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)


# =========================================================================== projection
class SphereProjection(TransformerMixin, BaseEstimator):
    """Map rows onto the unit sphere: standardize, append a bias coordinate, normalize.

    ``x -> z / ||z||`` with ``z = ((x - mean) / std, bias)``. The bias coordinate keeps
    the map injective up to the standardization (x and 2x stay different points) and
    makes zero rows harmless: a row equal to the training mean maps to the pole
    ``(0, ..., 0, 1)``. With ``bias=0`` no coordinate is appended and an all-zero row maps
    to the first basis vector.

    Parameters
    ----------
    standardize : bool, default=True
        Center and scale every feature with a :class:`~sklearn.preprocessing.StandardScaler`
        fitted on the training data (constant features are only centered).
    bias : float, default=1.0
        Value of the appended coordinate (in standardized units); 0 appends nothing.

    Attributes
    ----------
    scaler_ : StandardScaler or None
    n_features_in_ : int
    n_features_out_ : int
    """

    _parameter_constraints: dict = {
        "standardize": ["boolean"],
        "bias": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(self, standardize=True, bias=1.0):
        self.standardize = standardize
        self.bias = bias

    def fit(self, X, y=None):
        self._validate_params()
        X = validate_data(self, X, dtype=np.float64)
        bias = self._check_bias()
        self.scaler_ = None
        if self.standardize:
            with np.errstate(over="ignore", invalid="ignore"):
                scaler = StandardScaler().fit(X)
            bad = ~(np.isfinite(scaler.mean_) & np.isfinite(scaler.var_))
            if np.any(bad):
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"feature {j} cannot be standardized: its variance overflows float64 "
                    f"(values up to {np.max(np.abs(X[:, j])):.3g}); divide the data by a "
                    "constant first, or use standardize=False"
                )
            self.scaler_ = scaler
        self.n_features_out_ = X.shape[1] + (1 if bias > 0 else 0)
        return self

    def _check_bias(self) -> float:
        if isinstance(self.bias, bool) or not isinstance(self.bias, numbers.Real):
            raise ValueError(f"bias must be a non-negative real number, got {self.bias!r}")
        if not (math.isfinite(self.bias) and self.bias >= 0):
            raise ValueError(f"bias must be a non-negative finite number, got {self.bias!r}")
        return float(self.bias)

    def transform(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._project(X)

    def _project(self, X: np.ndarray) -> np.ndarray:
        if self.scaler_ is None:
            Z = np.array(X, dtype=float)
        else:
            with np.errstate(over="ignore"):
                Z = self.scaler_.transform(X)
            if not np.all(np.isfinite(Z)):
                i = int(np.flatnonzero(~np.all(np.isfinite(Z), axis=1))[0])
                raise ValueError(
                    f"row {i} overflows float64 when standardized (values up to "
                    f"{np.max(np.abs(X[i])):.3g}, far outside the training data)"
                )
        bias = float(self.bias)
        if bias > 0:
            Z = np.hstack([Z, np.full((Z.shape[0], 1), bias)])
        return normalize_rows(Z)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        if float(self.bias) > 0:
            names = np.concatenate([names, np.array(["bias"], dtype=object)])
        return np.asarray(names, dtype=object)


def normalize_rows(Z: np.ndarray) -> np.ndarray:
    """Rows divided by their norms (overflow-safe); zero rows become e_1."""
    Z = np.array(Z, dtype=float)
    big = np.max(np.abs(Z), axis=1, initial=0.0)
    zero = big == 0
    big[zero] = 1.0
    Z /= big[:, None]
    norms = np.sqrt(np.einsum("ij,ij->i", Z, Z))
    norms[zero] = 1.0
    Z /= norms[:, None]
    if np.any(zero) and Z.shape[1]:
        Z[zero] = 0.0
        Z[zero, 0] = 1.0
    return Z
