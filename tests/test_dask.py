"""Blockwise prediction of dask arrays on a dask.distributed LocalCluster (loopback only)."""

from __future__ import annotations

import math

import dask.array as da
import distributed
import numpy as np
import pytest

import infdepth.estimators.compiled as est_module
from infdepth.estimators import (
    InfiniteNetworkClassifier,
    SingularKernelClassifier,
)

METHODS = ("predict", "predict_proba", "decision_function")


def _data(n_train, n_test, d, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_train, d))
    y = np.array(["a", "b", "c"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.8)]
    Q = rng.standard_normal((n_test, d))
    Q[: min(3, n_test)] = X[: min(3, n_test)]  # coincident with training points
    return X, y, Q


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def models():
    X, y, Q = _data(est_module.FAST_MIN_TRAIN + 200, 700, 6, 0)  # fused path
    Xs, ys, _ = _data(120, 0, 6, 1)
    fitted = [
        InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf).fit(X, y),
        SingularKernelClassifier(alpha=4.0).fit(X, y),
        InfiniteNetworkClassifier("relu", kernel="ntk", depth=3).fit(Xs, ys),
        InfiniteNetworkClassifier("softplus", kernel="nngp", depth=math.inf).fit(Xs, ys),
        InfiniteNetworkClassifier("gelu", depth=math.inf).fit(Xs, ys),
    ]
    return fitted, Q


def test_dask_without_a_client_uses_the_graph(models):
    import dask

    fitted, Q = models
    dQ = da.from_array(Q, chunks=(50, -1))
    clf = fitted[2]
    with dask.config.set(scheduler="synchronous"):
        # runs before the cluster fixture exists: no default client, a graph node ships it
        result = clf.predict_proba(dQ).compute(scheduler="synchronous")
    np.testing.assert_array_equal(result, clf.predict_proba(Q))


def test_dask_input_validation(models):
    fitted, Q = models
    with pytest.raises(ValueError, match="features"):
        fitted[0].predict(da.from_array(Q[:, :4], chunks=(50, -1)))
    with pytest.raises(ValueError, match="2D"):
        fitted[0].predict(da.from_array(Q[:, 0], chunks=50))


def test_distributed_prediction_equals_in_memory_exactly(client, models):
    fitted, Q = models
    assert len(client.scheduler_info()["workers"]) == 2
    dQ = da.from_array(Q, chunks=(23, 3))  # many row chunks, split features too
    assert dQ.numblocks[0] > 20
    for clf in fitted:
        for method in METHODS:
            lazy = getattr(clf, method)(dQ)
            assert isinstance(lazy, da.Array)
            result = lazy.compute()
            expected = getattr(clf, method)(Q)
            assert result.dtype == expected.dtype
            np.testing.assert_array_equal(result, expected, err_msg=f"{clf!r}.{method}")
    # the tasks ran on both workers, with the estimator shipped once per worker
    processing = client.run(lambda: 1)
    assert len(processing) == 2
