"""The shared classifier machinery: projection, label coding, blocked prediction, Dask
dispatch, persistence hooks."""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import gen_batches
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    check_is_fitted,
    validate_data,
)

from ..activations import (
    Activation,
)
from ..distributed import dask_blockwise
from ..kernels import (
    GapTable,
    KernelFunction,
    check_dtype,
)
from ..kernels.gram import check_unit_rows
from .compiled import FAST_MIN_TRAIN, FLOAT32_NEAR_GAP, NEAR_GAP, compiled_kernels
from .geometry import quiet_floats, row_block
from .outputs import normalize_outputs, simplex_projection
from .persistence import RECIPE_KEY, TABLES_KEY, activation_from_state, activation_state
from .projection import SphereProjection, normalize_rows
from .rules import RULE_ALIASES, VoteWeights


# =========================================================================== base class
class SphereClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery: projection, label coding, blocked prediction, Dask dispatch."""

    # ------------------------------------------------------------------ fitting helpers
    def _fit_common(self, X, y):
        check_dtype(self.dtype)
        if self.device is not None:
            from ..kernels.torch_backend import resolve_device

            resolve_device(self.device)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data; "
                f"got only one class: {classes[0]!r}"
            )
        projection = self.projection
        if isinstance(projection, str):
            if projection != "auto":
                raise ValueError(f"projection must be 'auto', None or a transformer, got "
                                 f"{projection!r}")
            self.projection_ = SphereProjection().fit(X)
        elif projection is None:
            self.projection_ = None
        elif hasattr(projection, "fit") and hasattr(projection, "transform"):
            self.projection_ = clone(projection).fit(X)
        else:
            raise ValueError(f"projection must be 'auto', None or a transformer, got "
                             f"{projection!r}")
        Xs = self._to_sphere(X)
        order = np.argsort(codes, kind="stable")
        self.classes_ = classes
        self.X_fit_ = np.ascontiguousarray(Xs[order])
        self.y_fit_ = codes[order]
        self._seg = np.searchsorted(self.y_fit_, np.arange(classes.size + 1)).astype(np.int64)
        self._cache = {}
        return Xs

    def _to_sphere(self, X: np.ndarray) -> np.ndarray:
        if self.projection_ is not None:
            Z = np.asarray(self.projection_.transform(X), dtype=float)
            if Z.ndim != 2:
                raise ValueError("the projection must return a 2-d array")
            if not np.all(np.isfinite(Z)):
                raise ValueError("the projection returned NaN or infinite values")
            return normalize_rows(Z)
        return check_unit_rows(X, "X", "projection=None means the rows are unit vectors; "
                               "use projection='auto' (SphereProjection)")

    def _onehot(self) -> np.ndarray:
        Y = np.zeros((self.y_fit_.size, self.classes_.size))
        Y[np.arange(self.y_fit_.size), self.y_fit_] = 1.0
        return Y

    def _train_T(self, dtype=np.float64) -> np.ndarray:
        key = "XtT" if dtype == np.float64 else "XtT32"
        XtT = self._cache.get(key)
        if XtT is None:
            XtT = self._cache[key] = np.ascontiguousarray(self.X_fit_.T, dtype=dtype)
        return XtT

    def _device_arrays(self):
        """Device copies of the training set and tables, kept for later predictions."""
        from ..kernels.torch_backend import DeviceArrays

        arrays = self._cache.get("device")
        if arrays is None or arrays.key != (str(self.device), self.dtype):
            arrays = self._cache["device"] = DeviceArrays(self.device, self.dtype)
        return arrays

    def __getstate__(self):
        state = dict(super().__getstate__())
        cache = state.get("_cache")
        if cache is not None:  # see "Persistence" in the module docstring
            state["_cache"] = {}
        if isinstance(state.get("activation"), Activation):
            state["activation"] = activation_state(state["activation"], type(self).__name__)
        if cache is not None and hasattr(self, "rule_"):
            state[TABLES_KEY] = self._persistent_tables(cache)
        return state

    def __setstate__(self, state):
        state = dict(state)
        tables = state.pop(TABLES_KEY, None)
        if isinstance(state.get("activation"), dict) and RECIPE_KEY in state["activation"]:
            state["activation"] = activation_from_state(state["activation"])
        if state.get("rule_") in RULE_ALIASES:  # pickled before the rename
            state["rule_"] = RULE_ALIASES[state["rule_"]]
        super().__setstate__(state)
        if tables is not None:
            self._install_persistent_tables(tables)

    def _persistent_tables(self, cache) -> dict:
        """The tables predictions use: the engine's kernel table (with the complement
        cells if built) and the fused pass's lookup tables, as plain attribute dicts."""
        own = [(key, table) for key, table in cache.items() if isinstance(key, tuple)]
        kernel = []
        key = self._kernel_table_key()
        if key is not None:
            table = self._activation()._cache.get(key)
            if table is not None:
                attrs = {k: v for k, v in vars(table).items() if k != "dual"}
                kernel.append((key[0], key[1], attrs))
        return {"kernel": kernel, "own": own}

    def _kernel_table_key(self):
        return None

    def _install_persistent_tables(self, tables) -> None:
        self._cache.update(dict(tables["own"]))
        if not tables["kernel"]:
            return
        act = self._activation()
        for kind, depth, attrs in tables["kernel"]:
            if (kind, depth) not in act._cache:  # a table built in this process wins
                table = KernelFunction.__new__(KernelFunction)
                if "_value_table" in attrs:  # written when the value cells were built eagerly
                    attrs = {**attrs, "_value_cells": attrs["_value_table"]}
                    del attrs["_value_table"]
                table.__dict__.update(attrs)
                table.activation_name = act.name  # (files written before it was kept lack it)
                table.dual = act.dual_function
                act._cache[(kind, depth)] = table

    def _shipping_state(self):
        """Lookup tables and engine objects that predictions use, for a Dask worker.

        Engine tables are computed with LAPACK, whose last bits depend on the number of
        BLAS threads; shipping the ones in use (instead of rebuilding them on the worker)
        keeps worker predictions bitwise equal to in-memory ones. See
        :mod:`infdepth.distributed`.
        """
        check_is_fitted(self)
        self._outputs_block(self.X_fit_[:2])  # builds everything prediction needs
        tables = {k: v for k, v in self._cache.items() if isinstance(k, tuple)}
        act = self._activation() if hasattr(self, "_activation") else None
        return tables, act, (dict(act._cache) if act is not None else None)

    def _install_shipped_state(self, state) -> None:
        tables, act, act_cache = state
        self._cache = dict(tables)
        if act is not None:
            act._cache.update(act_cache)
            self._cache["activation"] = act

    # ------------------------------------------------------------------ prediction
    def _validated_sphere(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._to_sphere(X)

    def _outputs(self, X) -> np.ndarray:
        """Raw outputs f (n_samples, n_classes), up to a positive factor per row."""
        Q = self._validated_sphere(X)
        n = self.X_fit_.shape[0]
        out = np.empty((Q.shape[0], self.classes_.size))
        with quiet_floats():
            for rows in gen_batches(Q.shape[0], self._block_rows(n)):
                out[rows] = self._outputs_block(Q[rows])
        return out

    def _block_rows(self, n_train: int) -> int:
        return row_block(n_train)

    @dask_blockwise
    def decision_function(self, X):
        """Normalized outputs D(x) (see the module docstring); 1-d for two classes."""
        D = normalize_outputs(self._outputs(X))
        return D[:, 1] - D[:, 0] if D.shape[1] == 2 else D

    @dask_blockwise
    def predict_proba(self, X):
        """Class probabilities: D(x) projected onto the simplex, Laplace-smoothed for the
        vote rules (see "Outputs" in the module docstring)."""
        P = simplex_projection(normalize_outputs(self._outputs(X)))
        n, k = self.X_fit_.shape[0], P.shape[1]
        return (n * P + 1.0) / (n + k)

    @dask_blockwise
    def predict(self, X):
        """Class labels: argmax of the outputs."""
        D = normalize_outputs(self._outputs(X))
        return self.classes_[np.argmax(D, axis=1)]

    # ------------------------------------------------------------------ vote rules
    def _vote_outputs(self, Q, weights: VoteWeights):
        """A vote rule's outputs: on a torch device, by the compiled pass (in float32 if
        asked; from FAST_MIN_TRAIN training points on in float64), or with numpy."""
        jit = compiled_kernels()
        float32 = check_dtype(self.dtype) == "float32"
        fast = jit is not None and (float32 or self.X_fit_.shape[0] >= FAST_MIN_TRAIN)
        if fast or self.device is not None:
            table = self._cache.get(("table", weights.table_key))
            if table is None:
                table = self._cache[("table", weights.table_key)] = GapTable(
                    weights.values, largest=math.exp(600)
                )
            if np.all(table.ok):
                near_gap = FLOAT32_NEAR_GAP if float32 else NEAR_GAP
                if self.device is not None:
                    return weights.outputs_device(Q, self.X_fit_, self._seg, table,
                                                  self._device_arrays(), near_gap)
                XtT = self._train_T(np.float32 if float32 else np.float64)
                return weights.outputs_fast(Q, self.X_fit_, XtT, self._seg, table, jit,
                                            near_gap)
        return weights.outputs_numpy(Q, self.X_fit_, self._train_T(), self._seg)
