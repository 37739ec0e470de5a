"""The iterative kernel solver (infdepth.solvers.iterative) and solver= on the classifier."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from infdepth.estimators import InfiniteNetworkClassifier
from infdepth.kernels import Kernel
from infdepth.solvers.iterative import GramOperator, NystromPreconditioner, solve

TOL = 1e-8


def sphere(n, d=6, seed=0):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def labels(n, c=3, seed=1):
    return np.eye(c)[np.random.default_rng(seed).integers(0, c, n)]


@pytest.mark.parametrize(("act", "kind", "depth", "ridge"),
                         [("relu", "ntk", 3, 0.0), ("erf", "nngp", 10, 0.0),
                          ("tanh", "ntk", 2, 0.1)])
def test_iterative_equals_dense_within_stopping_bound(act, kind, depth, ridge):
    X, Y = sphere(300), labels(300)
    kern = Kernel(act, kind, depth)
    op = GramOperator(kern, X, ridge, block_entries=5000)
    res = solve(op, Y, tol=TOL, rank=60, max_iter=300)
    assert res.converged and res.residual <= TOL
    K = kern(X) + ridge * np.eye(300)
    dense = np.linalg.solve(K, Y)
    # |dA| = |K^{-1} r|, and at a point with k(x, x) = 1 an output moves by at most
    # ||r|| / sqrt(lambda_min) (k(x)^T K^{-1} k(x) <= 1); ||r|| <= tol ||y||
    lam_min = np.linalg.eigvalsh(K)[0]
    r_norm = TOL * np.max(np.linalg.norm(Y, axis=0))
    Q = sphere(50, seed=5)
    out_gap = np.max(np.abs(kern(Q, X) @ (res.coef - dense)))
    assert out_gap <= 2 * r_norm / np.sqrt(lam_min) + 1e-10
    assert np.max(np.abs(K @ res.coef - Y)) <= 2 * r_norm


def test_richardson_reaches_the_same_solution_in_more_epochs():
    X, Y = sphere(200), labels(200)
    op = GramOperator(Kernel("erf", "nngp", 10), X)
    cg = solve(op, Y, tol=1e-7, rank=40)
    ep = solve(op, Y, tol=1e-7, rank=40, method="richardson", max_iter=1000)
    assert cg.converged and ep.converged and cg.n_epochs < ep.n_epochs
    lam_min = np.linalg.eigvalsh(op.matvec(np.eye(200)))[0]
    # each solution is within ||K^{-1} r|| <= tol ||y|| / lambda_min of the exact one
    bound = 2 * 1e-7 * np.max(np.linalg.norm(Y, axis=0)) / lam_min
    assert np.max(np.abs(cg.coef - ep.coef)) <= bound


def test_preconditioner_flattens_the_top_of_the_spectrum():
    X = sphere(200)
    op = GramOperator(Kernel("relu", "ntk", 3), X)
    P = NystromPreconditioner.build(op, 40, 0)
    K = op.matvec(np.eye(200))
    lam = np.linalg.eigvalsh(K)
    PK = np.column_stack([P.apply(K[:, j]) for j in range(200)])
    mu = np.sort(np.linalg.eigvals(PK).real)
    assert mu[-1] / mu[0] < 0.2 * lam[-1] / lam[0]  # condition number much smaller


def test_non_convergence_warns():
    X, Y = sphere(200), labels(200)
    op = GramOperator(Kernel("relu", "ntk", 3), X)
    with pytest.warns(ConvergenceWarning, match="residual"):
        res = solve(op, Y, tol=1e-12, max_iter=2, rank=0)
    assert not res.converged and res.n_epochs == 2 and res.residual > 1e-12


def test_verbose_log_and_history(capsys):
    X, Y = sphere(100), labels(100)
    res = solve(GramOperator(Kernel("erf", "nngp", 3), X), Y, tol=1e-6, rank=20, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert "Nystrom preconditioner: 20 directions" in lines[0]  # then one line per epoch
    assert len(lines) == 1 + res.n_epochs and all("residual" in ln for ln in lines[1:])
    assert res.history[-1] == pytest.approx(res.residual)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"tol": 0}, "tol"), ({"max_iter": 0}, "max_iter"), ({"rank": -1}, "rank"),
    ({"method": "sgd"}, "method"), ({"oversample": 0.5}, "oversample"),
    ({"oversample": float("nan")}, "oversample")])
def test_bad_parameters(kwargs, match):
    op = GramOperator(Kernel("erf", "nngp", 3), sphere(20))
    with pytest.raises(ValueError, match=match):
        solve(op, labels(20), **kwargs)


def test_bad_inputs():
    op = GramOperator(Kernel("erf", "nngp", 3), sphere(20))
    with pytest.raises(ValueError, match="rows"):
        solve(op, labels(19))
    with pytest.raises(ValueError, match="NaN"):
        solve(op, np.full((20, 2), np.nan))
    with pytest.raises(ValueError, match="ridge"):
        GramOperator(Kernel(), sphere(20), ridge=-1.0)
    with pytest.raises(ValueError, match="block_entries"):
        GramOperator(Kernel(), sphere(20), block_entries=0)


def test_memory_bounded():
    n, rank, c, block, jobs = 4000, 50, 4, 1 << 17, 2
    X, Y = sphere(n, 10), labels(n, c)
    op = GramOperator(Kernel("erf", "nngp", 3), X, block_entries=block, n_jobs=jobs)
    tracemalloc.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        op.matvec(Y)  # the kernel's tables are built (and kept) before the measurement
        tracemalloc.reset_peak()
        solve(op, Y, tol=1e-4, rank=rank, max_iter=3)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the documented model (solvers/iterative.py): the Nystrom basis (n s), one chunk of
    # the 2s sampled columns (n 2s here) and three 2s x 2s matrices while it is built,
    # a few n x c iterates, and at most 4 tiles of block_entries float64 per thread
    m = 2 * rank
    bound = 8 * (n * rank + n * m + 3 * m * m + 10 * n * c + 4 * jobs * block)
    assert peak < bound < 0.15 * n * n * 8  # dense K alone would be n^2 * 8 bytes


def test_dask_equals_in_memory():
    distributed = pytest.importorskip("dask.distributed")
    from infdepth.solvers.iterative import DaskGramOperator

    X, Y = sphere(240), labels(240)
    kern = Kernel("relu", "ntk", 3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dop = DaskGramOperator(client, kern, X, block_entries=240 * 50)
        V = np.random.default_rng(2).standard_normal((240, 3))
        local = GramOperator(kern, X, block_entries=240 * 50)
        np.testing.assert_allclose(dop.matvec(V), local.matvec(V), rtol=1e-12, atol=1e-12)
        a = solve(dop, Y, tol=1e-9, rank=40)
    b = solve(local, Y, tol=1e-9, rank=40)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-6)


def test_torch_device_cpu_equals_numpy():
    pytest.importorskip("torch")
    X, Y = sphere(80), labels(80)
    a = solve(GramOperator(Kernel("erf", "nngp", 10, device="cpu"), X), Y, tol=1e-9, rank=20)
    b = solve(GramOperator(Kernel("erf", "nngp", 10), X), Y, tol=1e-9, rank=20)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-6)


@pytest.mark.parametrize(("act", "kind", "depth"), [("relu", "ntk", 3), ("erf", "nngp", 10)])
def test_classifier_iterative_matches_dense(act, kind, depth):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] ** 2 > 0.3).astype(int) + (X[:, 2] > 1)
    Xt = rng.standard_normal((200, 5))
    dense = InfiniteNetworkClassifier(act, kind, depth, solver="dense").fit(X, y)
    it = InfiniteNetworkClassifier(act, kind, depth, solver="iterative", tol=1e-9).fit(X, y)
    assert it.solver_ == "cg" and it.residual_ <= 1e-9
    fd, fi = dense.decision_function(Xt), it.decision_function(Xt)
    scale = np.max(np.abs(fd), axis=1)
    assert np.max(np.abs(fd - fi) / scale[:, None]) < 1e-4
    assert np.mean(dense.predict(Xt) == it.predict(Xt)) >= 0.999


def test_classifier_auto_goes_iterative_beyond_the_limit(monkeypatch):
    from infdepth.solvers import dense

    monkeypatch.setattr(dense, "FIT_MEMORY_LIMIT", 10_000)
    X = np.random.default_rng(0).standard_normal((100, 4))
    y = (X[:, 0] > 0).astype(int)
    assert InfiniteNetworkClassifier("erf", "nngp", 3).fit(X, y).solver_ == "cg"
    with pytest.raises(MemoryError):
        InfiniteNetworkClassifier("erf", "nngp", 3, solver="dense").fit(X, y)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"solver": "lu"}, "solver"), ({"tol": -1.0}, "tol"), ({"max_epochs": 1.5}, "max_epochs"),
    ({"solver": "iterative", "depth": float("inf")}, "finite depth")])
def test_classifier_bad_solver_parameters(kwargs, match):
    X = np.random.default_rng(0).standard_normal((30, 4))
    y = (X[:, 0] > 0).astype(int)
    params = {"activation": "softplus", "kernel": "ntk", "depth": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        InfiniteNetworkClassifier(**params).fit(X, y)


def test_classifier_dask_solver_equals_iterative():
    """solver="dask": the same iteration with its passes over K as tasks on a LocalCluster
    gives the in-memory iterative solution (to the solver's tolerance) and predictions."""
    distributed = pytest.importorskip("dask.distributed")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((150, 4))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    Xt = rng.standard_normal((60, 4))
    local = InfiniteNetworkClassifier("relu", "ntk", 3, solver="iterative", tol=1e-10).fit(X, y)
    with pytest.raises(ValueError, match="no.*client|there is none"):
        InfiniteNetworkClassifier("relu", "ntk", 3, solver="dask").fit(X, y)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        remote = InfiniteNetworkClassifier("relu", "ntk", 3, solver="dask", tol=1e-10).fit(X, y)
        assert remote.solver_ == "cg"
        scale = np.max(np.abs(local.dual_coef_))
        np.testing.assert_allclose(remote.dual_coef_, local.dual_coef_, atol=1e-7 * scale)
        np.testing.assert_array_equal(remote.predict(Xt), local.predict(Xt))


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_triangle_pass_equals_the_full_gram_matrix(n_jobs, dtype):
    """matvec makes only K's upper block triangle (tiles of block_entries); it must equal
    the full matrix from Kernel.__call__ times V, within the blocks' precision: float64
    to rounding, float32 to its documented kernel error (1e-6 relative) summed over n."""
    n = 530  # not a multiple of the tile (22 x 22 for 500 entries): a ragged last block
    X, V = sphere(n, 7), np.random.default_rng(4).standard_normal((n, 3))
    kern = Kernel("relu", "ntk", 3, dtype=dtype)
    op = GramOperator(kern, X, ridge=0.25, block_entries=500, n_jobs=n_jobs)
    exact = Kernel("relu", "ntk", 3)(X) @ V + 0.25 * V
    tol = 1e-12 if dtype == "float64" else 1e-6
    bound = tol * (np.abs(Kernel("relu", "ntk", 3)(X)) @ np.abs(V))
    assert np.all(np.abs(op.matvec(V) - exact) <= bound + 1e-14)
    np.testing.assert_allclose(op.matvec(V[:, 0]), exact[:, 0], rtol=0,
                               atol=float(np.max(bound)) + 1e-14)


def test_any_symmetric_callable_is_an_operator():
    """A kernel given as a plain callable takes the same triangle pass."""
    X, V = sphere(90), np.random.default_rng(6).standard_normal((90, 2))
    op = GramOperator(lambda A, B: np.exp(A @ B.T), X, block_entries=300, n_jobs=2)
    np.testing.assert_allclose(op.matvec(V), np.exp(X @ X.T) @ V, rtol=1e-12)


def test_nystrom_basis_is_orthonormal_and_exact_on_its_columns():
    """Without oversampling (m = s): U^T U = I, and U diag(lam) U^T reproduces the
    sampled columns K[:, S] (the Nystrom approximation interpolates them), against the
    dense K."""
    X = sphere(300)
    op = GramOperator(Kernel("erf", "nngp", 3), X, block_entries=2000)
    P = NystromPreconditioner.build(op, 40, random_state=0, oversample=1)
    np.testing.assert_allclose(P.U.T @ P.U, np.eye(P.lam.size), atol=1e-8)
    S = np.sort(np.random.default_rng(0).choice(300, size=40, replace=False))
    K = Kernel("erf", "nngp", 3)(X)
    approx = (P.U * P.lam) @ P.U[S].T
    assert np.max(np.abs(approx - K[:, S])) <= 1e-8 * np.max(np.abs(K))


@pytest.mark.parametrize("oversample", [1.5, 2.0, 3.0])
def test_oversampled_nystrom_is_the_top_of_the_larger_approximation(oversample):
    """m = oversample s columns, s kept: lam and U U^T are the top s eigenvalues and
    eigenprojector of the dense rank-m Nystrom matrix K[:, S] K[S, S]^{-1} K[S, :]
    (numpy's eigh of the n x n matrix: an independent computation). The streamed row
    chunks (a few rows each here) must not change it."""
    from infdepth.solvers import iterative

    n, s = 400, 30
    X = sphere(n)
    kern = Kernel("relu", "ntk", 3)
    op = GramOperator(kern, X, block_entries=2000)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iterative, "NYSTROM_CHUNK_ENTRIES", 7 * 64)  # chunks of 7 rows or fewer
        P = NystromPreconditioner.build(op, s, random_state=3, oversample=oversample)
    m = int(np.ceil(oversample * s))
    S = np.sort(np.random.default_rng(3).choice(n, size=m, replace=False))
    K = kern(X)
    nys = K[:, S] @ np.linalg.solve(K[np.ix_(S, S)], K[S])
    w, Q = np.linalg.eigh((nys + nys.T) / 2)
    w, Q = w[::-1][:s], Q[:, ::-1][:, :s]
    np.testing.assert_allclose(P.lam, w, rtol=1e-9, atol=1e-12 * w[0])
    np.testing.assert_allclose(P.U.T @ P.U, np.eye(s), atol=1e-9)
    np.testing.assert_allclose(P.U @ P.U.T, Q @ Q.T, atol=1e-7)


def test_nystrom_build_survives_duplicate_points():
    """Repeated training points make K[S, S] singular: the shift nu keeps the Cholesky
    factor, and the basis stays orthonormal (P^{-1} stays SPD), the solve converges."""
    X = np.repeat(sphere(60), 3, axis=0)
    Y = labels(60, 3)[np.repeat(np.arange(60), 3)]
    op = GramOperator(Kernel("relu", "ntk", 3), X, block_entries=2000)
    P = NystromPreconditioner.build(op, 40, random_state=0)
    np.testing.assert_allclose(P.U.T @ P.U, np.eye(P.lam.size), atol=1e-8)
    assert P.lam.size <= 60  # at most the 60 distinct points' directions are real
    ref = Kernel("relu", "ntk", 3)(X[::3])  # the distinct system, solved directly
    A = solve(op, Y, tol=1e-8, rank=40).coef
    np.testing.assert_allclose(A.reshape(60, 3, -1).sum(axis=1),
                               np.linalg.solve(ref, Y[::3]), rtol=1e-5, atol=1e-6)


def test_auto_rank_and_n_jobs():
    from infdepth.solvers.iterative import AUTO_RANK, auto_rank

    assert auto_rank(100) == 25 and auto_rank(10**5) == AUTO_RANK
    assert auto_rank(10**7) * 8 * 10**7 <= 2**32  # the basis stays within 4 GiB
    with pytest.raises(ValueError, match="n_jobs"):
        GramOperator(Kernel(), sphere(20), n_jobs=0)
    with pytest.raises(ValueError, match="rank"):
        solve(GramOperator(Kernel("erf", "nngp", 3), sphere(20)), labels(20), rank="big")


def test_classifier_verbose_logs_every_epoch(capsys):
    X = np.random.default_rng(0).standard_normal((80, 4))
    y = (X[:, 0] > 0).astype(int)
    clf = InfiniteNetworkClassifier("erf", "nngp", 3, solver="iterative", verbose=2).fit(X, y)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "epoch" in ln]
    assert len(lines) == clf.n_epochs_ > 0 and all("residual" in ln for ln in lines)


def test_block_pass_survives_pickling():
    """DaskGramOperator scatters the pass to process workers: it must pickle (the cached
    KernelFunction, whose duals hold lambdas, is dropped and looked up again there) and
    give the same products after the round trip."""
    import pickle

    X, V = sphere(120), np.random.default_rng(8).standard_normal((120, 2))
    op = GramOperator(Kernel("relu", "ntk", 3), X, block_entries=900, n_jobs=1)
    expected = op.matvec(V)  # the function is looked up (and cached) by this pass
    restored = pickle.loads(pickle.dumps(op._pass))
    total = np.zeros_like(V)
    for rows in op.triangle_slices():
        _, local, below = restored.triangle_products(rows, V, op.tile)
        total[rows] += local
        total[rows.stop:] += below
    np.testing.assert_array_equal(total, expected)  # same tiles, same order of sums


@pytest.mark.parametrize(("act", "kind", "depth"), [("relu", "ntk", 3), ("erf", "nngp", 10)])
def test_outputs_after_an_iterative_fit_are_k_times_the_coefficients(act, kind, depth):
    """Prediction after a CG fit takes the engine's compiled Gram pass (the solve's own
    kernel values): it equals K(Q, X) A with K from the log-domain table, to the Gram
    pass's cell tolerance (1e-10 relative per entry) times sum_j |K_ij| |A_jc|."""
    from infdepth.kernels import kernel_function

    rng = np.random.default_rng(4)
    X, Xt = rng.standard_normal((150, 5)), rng.standard_normal((60, 5))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    it = InfiniteNetworkClassifier(act, kind, depth, solver="iterative").fit(X, y)
    Q = it._to_sphere(Xt)
    sign, logabs = kernel_function(act, kind, depth).log(np.clip(Q @ it.X_fit_.T, -1, 1))
    K = sign * np.exp(logabs)
    want = K @ it.dual_coef_
    bound = 4e-10 * (np.abs(K) @ np.abs(it.dual_coef_))
    got = it._outputs(Xt)
    assert np.all(np.abs(got - want) <= bound)
    assert not np.allclose(want, 0)
