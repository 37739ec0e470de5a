"""Dask support: predict blockwise on a ``dask.distributed`` cluster.

The estimators' ``predict``, ``predict_proba`` and ``decision_function`` accept a 2-d
``dask.array.Array`` (rows chunked any way; the feature axis is merged into one chunk) and
return a lazy dask array chunked like its rows. Each block is predicted by the fitted
estimator on a worker with the same code as in memory; with numba installed the result is
bitwise identical to the in-memory prediction however the rows are chunked.

The fitted estimator (with its training set) travels to the cluster once: when a
``dask.distributed`` client is active it is scattered to every worker
(``client.scatter(..., broadcast=True)``) and the blocks refer to that one copy; without a
client it is a single node of the task graph (``dask.delayed``), which the scheduler
computes once and shares between the tasks.

Pointing it at a real cluster
-----------------------------
Start a scheduler and workers on the cluster's machines (``dask scheduler`` on one host,
``dask worker tcp://SCHEDULER:8786`` on the others, or a deployment package such as
dask-jobqueue or dask-kubernetes), make ``infdepth`` importable on every worker (same
version; numba recommended), then in the client::

    from dask.distributed import Client
    import dask.array as da

    client = Client("tcp://SCHEDULER:8786")       # the scheduler's address
    clf = InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf).fit(X, y)
    X_big = da.from_zarr("features.zarr")         # or da.from_array(X, chunks=(50_000, -1))
    labels = clf.predict(X_big).compute()         # or .to_zarr(...) for outputs too large

A chunk's memory is its rows times the training-set size only through blocks sized by
scikit-learn's ``working_memory`` on the worker; choose row chunks of 10^4 - 10^5 rows.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.utils.validation import check_is_fitted

__all__ = ["dask_method", "ship", "Shipped"]

_METHODS = ("predict", "predict_proba", "decision_function")


class Shipped:
    """A fitted estimator with the lookup tables its predictions use, for the workers.

    Plain pickling of an estimator drops its caches (engine tables hold closures), and a
    worker would rebuild them; tables built by LAPACK under a different number of BLAS
    threads can differ in the last bit. This wrapper carries the tables in use
    (serialized with cloudpickle) so that workers compute bitwise what the client does.
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def __getstate__(self):
        import cloudpickle

        extra = None
        if hasattr(self.estimator, "_shipping_state"):
            extra = cloudpickle.dumps(self.estimator._shipping_state())
        return {"estimator": self.estimator, "extra": extra}

    def __setstate__(self, state):
        import cloudpickle

        self.estimator = state["estimator"]
        if state["extra"] is not None:
            self.estimator._install_shipped_state(cloudpickle.loads(state["extra"]))


def _apply(block, shipped, method):
    """Run one prediction method on one numpy block (on a worker)."""
    estimator = shipped.estimator if isinstance(shipped, Shipped) else shipped
    return getattr(estimator, method)(np.asarray(block))


def ship(estimator):
    """The fitted estimator as a single cluster-side object (Future or Delayed).

    With an active ``dask.distributed`` client: a Future of the estimator broadcast to all
    workers. Otherwise a ``dask.delayed`` object (one node of the graph).
    """
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        client = None
    if client is not None:
        return client.scatter(Shipped(estimator), broadcast=True, hash=False)
    import dask

    return dask.delayed(Shipped(estimator), pure=True, traverse=False)


def dask_method(estimator, X, method: str):
    """``estimator.<method>(X)`` for a dask array X, blockwise over the rows (lazy)."""
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    check_is_fitted(estimator)
    if X.ndim != 2:
        raise ValueError(f"Expected 2D array, got a {X.ndim}-d dask array instead")
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{estimator.n_features_in_} features as input"
        )
    X = X.rechunk({1: -1})
    shipped = ship(estimator)
    n_classes = len(estimator.classes_)
    if method == "predict" or (method == "decision_function" and n_classes == 2):
        dtype = estimator.classes_.dtype if method == "predict" else np.float64
        return X.map_blocks(
            _apply, shipped, method, dtype=dtype, drop_axis=1,
            meta=np.empty((0,), dtype=dtype),
        )
    return X.map_blocks(
        _apply, shipped, method, dtype=np.float64, chunks=(X.chunks[0], (n_classes,)),
        meta=np.empty((0, 0), dtype=np.float64),
    )


def is_dask_array(X) -> bool:
    """Whether X is a ``dask.array.Array`` (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "map_blocks")


def dask_blockwise(method):
    """Decorate a prediction method ``method(self, X)``: a Dask array X is computed
    blockwise along its rows by :func:`dask_method`, anything else directly."""

    @functools.wraps(method)
    def wrapper(self, X):
        if is_dask_array(X):
            return dask_method(self, X, method.__name__)
        return method(self, X)

    return wrapper
