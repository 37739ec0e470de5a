"""Resource limits and interrupted work.

* A fit whose n x n matrices would not fit in ``FIT_MEMORY_LIMIT`` fails at once with a
  ``MemoryError`` that says how much it needs; the limit is calibrated against the peak
  memory actually traced during a fit.
* ``KeyboardInterrupt`` in the middle of building a cached object (a kernel table, its
  complement cells, the majority rule's row table) leaves nothing half-built in a cache:
  the next call builds it again and gets the right values.
"""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest

import infdepth
import infdepth.kernels.tables as kernels
import infdepth.solvers.dense as est
from infdepth import InfiniteNetworkClassifier, KernelFunction


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, (X[:, 0] > 0).astype(int)


# =========================================================================== memory
@pytest.mark.parametrize("activation, depth, kernel", [
    ("erf", 3, "ntk"),            # interpolation
    ("relu", 2, "ntk"),           # complement coordinates
    ("softplus", math.inf, "ntk"),  # psi rule: an n x n system at depth infinity too
])
def test_fit_beyond_the_memory_limit_fails_early(activation, depth, kernel, monkeypatch):
    n = 300
    need = est.FIT_MATRICES * 8 * n * n
    monkeypatch.setattr(est, "FIT_MEMORY_LIMIT", need - 1)
    X, y = _data(n)
    builds = []
    monkeypatch.setattr(KernelFunction, "_build", lambda self: builds.append(self))
    # solver="dense": the default "auto" takes the iterative solver past the limit
    clf = InfiniteNetworkClassifier(activation, kernel=kernel, depth=depth, solver="dense")
    with pytest.raises(MemoryError) as info:
        clf.fit(X, y)
    message = str(info.value)
    assert f"{n} training points" in message
    assert f"{need / 2**30:.3g} GiB" in message and "FIT_MEMORY_LIMIT" in message
    assert builds == []  # refused before any kernel table was built
    assert not hasattr(clf, "rule_")


def test_fit_within_the_memory_limit_runs(monkeypatch):
    n = 60
    monkeypatch.setattr(est, "FIT_MEMORY_LIMIT", est.FIT_MATRICES * 8 * n * n)
    X, y = _data(n)
    assert InfiniteNetworkClassifier("erf", depth=3).fit(X, y).score(X, y) == 1.0
    with pytest.raises(MemoryError):
        InfiniteNetworkClassifier("erf", depth=3, solver="dense").fit(*_data(n + 1))


@pytest.mark.parametrize("activation", ["erf", "relu"])  # singular and majority rules
def test_vote_rules_need_no_kernel_matrix(activation, monkeypatch):
    monkeypatch.setattr(est, "FIT_MEMORY_LIMIT", 1)
    X, y = _data(300)
    clf = InfiniteNetworkClassifier(activation, depth=math.inf).fit(X, y)
    assert clf.predict(X[:5]).shape == (5,)


def test_default_limit_is_physical_memory(monkeypatch):
    monkeypatch.setattr(est, "FIT_MEMORY_LIMIT", None)
    total = est.physical_memory()
    assert total is not None and total > 2**28
    n = math.isqrt(total // (8 * est.FIT_MATRICES)) + 1  # just beyond it
    with pytest.raises(MemoryError, match="physical memory"):
        # solver="dense": "auto" would take the iterative solver (a fit of n ~ 10^4-10^5)
        InfiniteNetworkClassifier("erf", depth=3, solver="dense").fit(
            np.ones((n, 1)), np.arange(n) % 2)


@pytest.mark.parametrize("activation, depth", [("erf", 3), ("relu", 3),
                                               ("softplus", math.inf)])
def test_memory_model_bounds_the_traced_peak(activation, depth):
    """FIT_MATRICES * 8 n^2 bounds what a fit really allocates (numpy reports its
    allocations to tracemalloc), and is not wildly above it. (Below n ~ 500 the fixed
    ~2 MB of block temporaries is comparable to the matrices; the limit is for large n.)"""
    n = 800
    X, y = _data(n, seed=1)
    X = np.vstack([X, X[:5]])  # duplicates: the eigendecomposition fallback (worst case)
    y = np.concatenate([y, 1 - y[:5]])
    n = len(y)
    InfiniteNetworkClassifier(activation, depth=depth).fit(X[:20], y[:20])  # tables
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", est.IllConditionedGramWarning)
        tracemalloc.start()
        try:
            InfiniteNetworkClassifier(activation, depth=depth).fit(X, y)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    model = est.FIT_MATRICES * 8 * n * n
    print(f"peak {peak / (8 * n * n):.2f} n^2 float64")
    assert 0.5 * model < peak <= model


# =========================================================================== interrupts
def _erf_nngp_by_hand(xi, depth):
    """erf's dual arcsin(2 xi / 3) / arcsin(2 / 3), composed depth times."""
    for _ in range(depth):
        xi = np.arcsin(2 * xi / 3) / np.arcsin(2 / 3)
    return xi


def test_interrupted_table_build_leaves_no_cache_entry(monkeypatch):
    act = infdepth.activation("erf")
    monkeypatch.setattr(act, "_cache", {})

    def interrupted(self):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(KernelFunction, "_build", interrupted)
        with pytest.raises(KeyboardInterrupt):
            infdepth.nngp(0.5, "erf", 2)
    assert ("nngp", 2) not in act._cache
    xi = np.linspace(-0.99, 0.99, 11)
    np.testing.assert_allclose(infdepth.nngp(xi, "erf", 2), _erf_nngp_by_hand(xi, 2),
                               rtol=1e-12, atol=1e-15)
    assert ("nngp", 2) in act._cache


@pytest.mark.parametrize("which", ["value", "complement"])
def test_interrupted_cells_are_built_again(which, monkeypatch):
    """Both cell tables are built on first use (a Gram matrix in complement form never
    reads the value cells); an interrupted build leaves none, and the next call builds
    them again with the right values."""
    act = infdepth.activation("erf")
    monkeypatch.setattr(act, "_cache", {})
    fn = infdepth.kernel_function(act, "nngp", 2)
    assert fn._value_cells is None and fn._complement_cells is None
    evaluate = {"value": fn, "complement": lambda xi: np.exp(fn.log_complement(xi))}[which]
    want = {"value": _erf_nngp_by_hand, "complement": lambda xi, d: 1 - _erf_nngp_by_hand(xi, d)}

    def interrupted(self, start, apart=False):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(kernels.PanelFit, "cells", interrupted)
        with pytest.raises(KeyboardInterrupt):
            evaluate(np.array([0.5]))
    assert fn._value_cells is None and fn._complement_cells is None
    xi = np.linspace(-0.9, 0.9, 7)
    np.testing.assert_allclose(evaluate(xi), want[which](xi, 2), rtol=1e-11)
    other = "_complement_cells" if which == "value" else "_value_cells"
    assert getattr(fn, other) is None  # built only when used


class _Interrupting(np.ndarray):
    """Rows iterate normally until the third, then a KeyboardInterrupt."""

    def __iter__(self):
        for i, row in enumerate(np.asarray(self)):
            if i == 2:
                raise KeyboardInterrupt
            yield row


def test_interrupted_majority_row_table_is_not_cached():
    X, y = _data(10)
    clf = InfiniteNetworkClassifier("relu", depth=math.inf).fit(X, y)
    expected = clf.predict_proba(X)  # training points: their own labels (Laplace-smoothed)
    np.testing.assert_allclose(expected, (10 * np.eye(2)[y] + 1) / 12, rtol=1e-15)
    clf._cache.pop("rows")
    good = clf.X_fit_
    clf.X_fit_ = good.view(_Interrupting)
    with pytest.raises(KeyboardInterrupt):
        clf.predict_proba(X)
    assert "rows" not in clf._cache
    clf.X_fit_ = good
    np.testing.assert_array_equal(clf.predict_proba(X), expected)
