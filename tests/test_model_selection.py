"""InfiniteNetworkClassifierCV and the eigen-LOO solver: closed forms against refits.

Tolerances: the closed-form residuals (G Y)_i / G_ii and the explicit solves are two
backward-stable computations with the same Gram matrix; their difference is bounded by
cond(K + ridge I) times a few n eps. The grids below keep cond <= ~1e6 (n <= 60 distinct
points, ridge 0 at shallow depth), so 1e-8 relative to the largest output holds on any CPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, LeaveOneOut, StratifiedKFold
from sklearn.utils.estimator_checks import check_estimator

from infdepth.estimators import InfiniteNetworkClassifier
from infdepth.estimators.cv import gram_matrix
from infdepth.estimators.geometry import pair_geometry
from infdepth.estimators.projection import SphereProjection
from infdepth.model_selection import InfiniteNetworkClassifierCV, InfiniteNetworkSVC
from infdepth.solvers.dense import complement_solve
from infdepth.solvers.eigen_loo import complement_spectral_ridge, spectral_ridge

TOL = 1e-8


def _data(n=48, d=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (classes > 2) * (X[:, 2] > 0.8)
    return X, y


def _sphere(X):
    return SphereProjection().fit_transform(X)


def _onehot(y):
    Y = np.zeros((len(y), y.max() + 1))
    Y[np.arange(len(y)), y] = 1.0
    return Y


def _geometry(Z):
    return pair_geometry(Z, Z, np.ascontiguousarray(Z.T))


@pytest.mark.parametrize("ridge", [0.0, 1e-3, 0.1])
@pytest.mark.parametrize("act,kind,depth", [("erf", "ntk", 2), ("erf", "nngp", 5),
                                            ("relu", "ntk", 3), ("relu", "nngp", 1)])
def test_loo_equals_explicit_refits(act, kind, depth, ridge):
    X, y = _data()
    Z, Y = _sphere(X), _onehot(y)
    form, M, t = gram_matrix(act, kind, depth, _geometry(Z))
    K = M if form == "plain" else 1.0 - t * M
    system = spectral_ridge(M) if form == "plain" else complement_spectral_ridge(M, t)
    res = system.loo_residuals(Y, [ridge])[0]
    n = len(y)
    for i in range(n):
        tr = np.delete(np.arange(n), i)
        f = K[i, tr] @ np.linalg.solve(K[np.ix_(tr, tr)] + ridge * np.eye(n - 1), Y[tr])
        np.testing.assert_allclose(Y[i] - res[i], f, rtol=0, atol=TOL * max(1, np.abs(f).max()))


def test_kfold_residuals_equal_explicit_refits():
    X, y = _data(n=40)
    Z, Y = _sphere(X), _onehot(y)
    folds = [va for _, va in StratifiedKFold(4, shuffle=True, random_state=0).split(X, y)]
    for act in ("erf", "relu"):
        form, M, t = gram_matrix(act, "ntk", 3, _geometry(Z))
        K = M if form == "plain" else 1.0 - t * M
        system = spectral_ridge(M) if form == "plain" else complement_spectral_ridge(M, t)
        res = system.fold_residuals(Y, [0.0, 1e-2], folds)
        for f, va in enumerate(folds):
            tr = np.setdiff1d(np.arange(len(y)), va)
            for j, ridge in enumerate([0.0, 1e-2]):
                pred = K[np.ix_(va, tr)] @ np.linalg.solve(
                    K[np.ix_(tr, tr)] + ridge * np.eye(len(tr)), Y[tr])
                np.testing.assert_allclose(Y[va] - res[f][j], pred, rtol=0, atol=TOL * 10)


def test_deep_relu_complement_loo_keeps_the_digits():
    """ReLU NNGP at depth 10^4: K = J - t E with t ~ 4e-7, so K itself has lost ~6 digits; the
    complement LOO matches explicit refits by the estimator's complement solver."""
    X, y = _data(n=30)
    Z, Y = _sphere(X), _onehot(y)
    form, E, t = gram_matrix("relu", "nngp", 10000, _geometry(Z))
    assert form == "complement" and t < 1e-5
    res = complement_spectral_ridge(E, t).loo_residuals(Y, [0.0])[0]
    for i in range(len(y)):
        tr = np.delete(np.arange(len(y)), i)
        c0, beta, _, _ = complement_solve(E[np.ix_(tr, tr)], Y[tr], t)
        f = c0 - E[i, tr] @ beta
        np.testing.assert_allclose(Y[i] - res[i], f, rtol=0, atol=1e-7 * max(1, np.abs(f).max()))


def _unit(X):
    return _sphere(X)  # on the sphere already: projection=None keeps every fold's points


@pytest.mark.parametrize("cv", [None, 4])
def test_cv_results_agree_with_gridsearchcv(cv):
    X, y = _data(n=36)
    Z = _unit(X)
    grid = {"activation": ["relu", "erf"], "depth": [1, 3, math.inf],
            "kernel": ["ntk", "nngp"], "ridge": [0.0, 1e-2]}
    splits = (list(LeaveOneOut().split(Z)) if cv is None else
              list(StratifiedKFold(cv).split(Z, y)))
    search = InfiniteNetworkClassifierCV(
        activations=grid["activation"], kernels=grid["kernel"], depths=grid["depth"],
        ridges=grid["ridge"], cv=None if cv is None else splits, projection=None).fit(Z, y)
    ref = GridSearchCV(InfiniteNetworkClassifier(projection=None), grid, cv=splits).fit(Z, y)
    assert [p for p in search.cv_results_["params"]] == ref.cv_results_["params"]
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(search.cv_results_["rank_test_score"],
                                  ref.cv_results_["rank_test_score"])
    assert search.best_index_ == ref.best_index_
    if cv is not None:
        for s in range(len(splits)):
            np.testing.assert_allclose(search.cv_results_[f"split{s}_test_score"],
                                       ref.cv_results_[f"split{s}_test_score"], atol=1e-12)


def test_depth_infinity_loo_equals_refits():
    X, y = _data(n=30)
    Z = _unit(X)
    for act in ("erf", "relu"):  # singular rule, majority vote
        search = InfiniteNetworkClassifierCV(activations=[act], kernels=["ntk"],
                                             depths=[math.inf], ridges=[0.0],
                                             projection=None).fit(Z, y)
        hits = []
        for tr, va in LeaveOneOut().split(Z):
            m = InfiniteNetworkClassifier(act, depth=math.inf, projection=None).fit(Z[tr], y[tr])
            hits.append(m.predict(Z[va])[0] == y[va][0])
        assert search.best_score_ == pytest.approx(np.mean(hits), abs=1e-12)


def test_refitted_best_model_predicts_the_same_labels():
    X, y = _data(n=60, seed=1)
    search = InfiniteNetworkClassifierCV(activations=["relu", "erf"], depths=[1, 2, 4, math.inf],
                                         ridges=[0.0, 1e-3, 1e-1]).fit(X, y)
    assert set(search.best_params_) == {"activation", "kernel", "depth", "ridge"}
    assert (search.kernel_, search.depth_, search.ridge_) == (
        search.best_params_["kernel"], search.best_params_["depth"],
        search.best_params_["ridge"])
    by_hand = InfiniteNetworkClassifier(**search.best_params_).fit(X, y)
    Xt = np.random.default_rng(5).normal(size=(50, X.shape[1]))
    np.testing.assert_array_equal(search.predict(Xt), by_hand.predict(Xt))
    np.testing.assert_array_equal(search.classes_, np.unique(y))


def test_designed_activation_in_the_default_grid():
    X, y = _data(n=40)
    search = InfiniteNetworkClassifierCV(depths=[2, math.inf], ridges=[0.0, 1e-2]).fit(X, y)
    acts = {str(p["activation"]) for p in search.cv_results_["params"]}
    assert acts == {"relu", "erf", "designed"}
    assert "singular" in set(search.cv_results_["rule"])


def test_designed_activations_are_cached_within_a_bound():
    """designed_activation rounds alpha to 0.25 and keeps the last DESIGN_CACHE; an
    evicted one is freed with its kernel tables at once, by reference counting: the
    tables do not refer back to their activation (a cycle would wait for the cyclic
    collector, and a benchmark process grew to 24 GiB of such garbage)."""
    import gc
    import weakref

    from infdepth.estimators.cv import DESIGN_CACHE, designed_activation
    from infdepth.kernels import kernel_function

    first = designed_activation(4.1)
    assert first is designed_activation(4.0) and first.params["alpha"] == 4.0
    gone = weakref.ref(first)
    table = weakref.ref(kernel_function(first, "ntk", 3))
    del first
    gc.disable()
    try:
        for k in range(DESIGN_CACHE):
            designed_activation(5.0 + k)
        assert gone() is None and table() is None
    finally:
        gc.enable()


def test_threads_give_the_same_search():
    """Candidates on threads: below SMALL_BLAS points every candidate runs on one BLAS
    thread whatever n_jobs, the same operations in the same order, so the scores are
    bitwise equal; n_jobs=0 is refused."""
    X, y = _data(n=50, seed=3)
    grid = dict(activations=["relu", "erf", "designed"], depths=[1, 3, 7, math.inf],
                ridges=[0.0, 1e-3, 1e-1])
    one = InfiniteNetworkClassifierCV(**grid, n_jobs=1).fit(X, y)
    two = InfiniteNetworkClassifierCV(**grid, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(one.cv_results_["mean_test_score"],
                                  two.cv_results_["mean_test_score"])
    assert one.best_params_ == two.best_params_
    with pytest.raises(ValueError, match="n_jobs == 0"):
        InfiniteNetworkClassifierCV(**grid, n_jobs=0).fit(X, y)


@pytest.mark.parametrize("search", ["auto", "halving"])
def test_check_estimator(search):
    """"halving" with 6 candidates: the checks' 300-point fits (check_classifiers_train)
    go through two rounds."""
    check_estimator(InfiniteNetworkClassifierCV(activations=("relu", "erf"), kernels=("ntk",),
                                                depths=(1, 3, math.inf), ridges=(0.0, 1e-3),
                                                search=search))


@pytest.mark.parametrize("kwargs,match", [
    ({"depths": []}, "depths must be a non-empty"),
    ({"depths": [-1]}, "depths must be non-negative"),
    ({"depths": [1.5]}, "depths must be non-negative"),
    ({"ridges": [-1.0]}, "ridges must be non-negative"),
    ({"ridges": [math.nan]}, "ridges must be non-negative"),
    ({"kernels": ["rbf"]}, "kernels must be 'ntk' or 'nngp'"),
    ({"activations": [3]}, "activations must be names"),
    ({"activations": "relu"}, "non-empty sequence|activations"),
])
def test_bad_grids_raise(kwargs, match):
    X, y = _data(n=20)
    with pytest.raises((ValueError, TypeError), match=match):
        InfiniteNetworkClassifierCV(**kwargs).fit(X, y)


def test_ntk_svm():
    X, y = _data(n=60, seed=2)
    svm = InfiniteNetworkSVC(depths=(1, 3), Cs=(0.1, 10.0), cv=3).fit(X, y)
    assert svm.depth_ in (1, 3) and svm.C_ in (0.1, 10.0)
    assert svm.score(X, y) > 0.8
    # K - 1 = -t E gives the same SVM as K itself (sum alpha_i y_i = 0)
    from sklearn.svm import SVC

    Z = _sphere(X)
    form, E, t = gram_matrix("relu", "ntk", svm.depth_, _geometry(Z))
    plain = SVC(kernel="precomputed", C=svm.C_).fit(1.0 - t * E, y)
    np.testing.assert_array_equal(plain.predict(1.0 - t * E), svm.svc_.predict(-t * E))
    with pytest.raises(ValueError, match="finite"):
        InfiniteNetworkSVC(depths=(1, math.inf)).fit(X, y)


def _rows_of(search, it, key="mean_test_score"):
    """{(activation, depth, kernel, ridge): cv_results_[key]} of one round."""
    res = search.cv_results_
    return {(p["activation"], p["depth"], p["kernel"], p["ridge"]): s
            for p, s, i in zip(res["params"], res[key], res["iter"], strict=True)
            if i == it}


def test_halving_rounds_are_exhaustive_searches_on_their_points():
    """Successive halving: round 0 scores every candidate exactly as an exhaustive search
    of its subsample does, the best third goes on, and the last round's scores are the
    exhaustive search's on all the points."""
    from sklearn.utils import check_random_state, resample

    X, y = _data(n=200, seed=4)
    Z = _unit(X)
    grid = dict(activations=["relu", "erf"], depths=[1, 2, 4, math.inf],
                ridges=[0.0, 1e-3, 1e-1], projection=None)
    halving = InfiniteNetworkClassifierCV(**grid).fit(Z, y)  # auto: halving here
    assert halving.n_resources_ == [66, 200] and halving.n_candidates_ == [16, 6]
    rows = np.sort(resample(np.arange(200), n_samples=66, replace=False, stratify=y,
                            random_state=check_random_state(0)))
    small = InfiniteNetworkClassifierCV(**grid, search="exhaustive").fit(Z[rows], y[rows])
    full = InfiniteNetworkClassifierCV(**grid, search="exhaustive").fit(Z, y)
    first, last = _rows_of(halving, 0), _rows_of(halving, 1)
    ref_small, ref_full = _rows_of(small, 0), _rows_of(full, 0)
    assert first.keys() == ref_small.keys()
    for key, value in first.items():
        assert value == pytest.approx(ref_small[key], abs=1e-12)
    # the squared LOO error of every candidate, recomputed by explicit refits
    squared = _rows_of(small, 0, "mean_test_squared_error")
    Zs, Ys = Z[rows], _onehot(y[rows])
    for key in [("relu", 2, "ntk", 1e-3), ("erf", 4, "nngp", 1e-3), ("relu", 1, "nngp", 0.1)]:
        a, d, k, r = key
        form, M, t = gram_matrix(a, k, d, _geometry(Zs))
        K = M if form == "plain" else 1.0 - t * M
        err = []
        for i in range(len(rows)):
            tr = np.delete(np.arange(len(rows)), i)
            f = K[i, tr] @ np.linalg.solve(K[np.ix_(tr, tr)] + r * np.eye(len(tr)), Ys[tr])
            err.append(np.sum((Ys[i] - f) ** 2))
        assert squared[key] == pytest.approx(np.mean(err), rel=1e-7)  # cond <= ~1e5 here
    # the promoted candidates: squared error at the best ridge, then the best ridge's
    # score, then grid order
    merit = {}
    for (a, d, k, r), value in ref_small.items():
        merit.setdefault((a, d, k), []).append((squared[(a, d, k, r)], value))
    order = sorted(merit, key=lambda c: (min(e for e, _ in merit[c]),
                                         -max(v for _, v in merit[c]), list(merit).index(c)))
    assert {key[:3] for key in last} == set(order[:6])
    for key, value in last.items():
        assert value == pytest.approx(ref_full[key], abs=1e-12)
    best = max(last, key=lambda key: (last[key], -list(last).index(key)))
    assert (halving.activation_, halving.depth_, halving.kernel_, halving.ridge_) == best
    assert halving.best_score_ == pytest.approx(ref_full[best], abs=1e-12)
    assert halving.cv_results_["rank_test_score"][halving.best_index_] == 1
    assert np.all(halving.cv_results_["rank_test_score"][halving.cv_results_["iter"] == 1]
                  <= len(last))


def test_halving_with_kfold_and_its_limits():
    X, y = _data(n=200, seed=4)
    Z = _unit(X)
    grid = dict(activations=["relu", "erf"], depths=[1, 3, math.inf], ridges=[0.0, 1e-2],
                projection=None)
    assert InfiniteNetworkClassifierCV(**grid, cv=3).fit(Z, y).n_iterations_ == 1  # auto
    kfold = InfiniteNetworkClassifierCV(**grid, cv=3, search="halving").fit(Z, y)
    assert kfold.n_resources_ == [66, 200] and kfold.n_candidates_ == [12, 4]
    ref = InfiniteNetworkClassifierCV(**grid, cv=3, search="exhaustive").fit(Z, y)
    last, ref_rows = _rows_of(kfold, 1), _rows_of(ref, 0)
    for key, value in last.items():
        assert value == pytest.approx(ref_rows[key], abs=1e-12)
    splits = list(StratifiedKFold(3).split(Z, y))
    with pytest.raises(ValueError, match="fixed index splits"):
        InfiniteNetworkClassifierCV(**grid, cv=splits, search="halving").fit(Z, y)
    small = InfiniteNetworkClassifierCV(**grid, search="halving").fit(Z[:80], y[:80])
    assert small.n_resources_ == [80]  # 80 // 3 < HALVING_MIN_POINTS (30): one round
    middle = InfiniteNetworkClassifierCV(**grid, search="halving").fit(Z[:120], y[:120])
    assert middle.n_resources_ == [40, 120]
    assert InfiniteNetworkClassifierCV(**grid).fit(Z[:120], y[:120]).n_iterations_ == 1
    # (auto: exhaustive below HALVING_AUTO_MIN_POINTS, 150 points)
