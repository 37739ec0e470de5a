"""Large-n finite-depth fits with the iterative solver (infdepth.solvers.iterative).

Sections (each prints ratios measured in the same run; the machine is shared):

* ``epoch``: one epoch (a pass of (K + ridge I) V, float64 and float32 kernel blocks) as a
  ratio to the floor of one pass over the n x n kernel: blockwise ``X @ X.T``, one
  ``np.exp`` pass and the product with V, same block size.
* ``agree``: iterative vs dense at n (relu NTK depth 3, erf NNGP depth 10): label
  agreement and max |f_dense - f_iter| / max_c |f_dense| per test row; epochs, seconds.
* ``large``: fit + predict at n with peak memory (the process's peak RSS).
* ``dask``: epoch time of the Dask operator on a LocalCluster at n, and the n^2 cost model
  extrapolated to 10^6 (an extrapolation, not a run).
* ``mnist1d``: test accuracy vs n (relu NTK 3, erf NNGP 10, erf NNGP depth infinity).

Usage: ``python benchmarks/large_scale.py [--sections epoch agree ...] [--n-epoch N]
[--n-agree N --tol T --cases erf:nngp:10] [--n-large N] [--n-dask N] [--mnist-n 4000 8000 ...]``
(``--cases`` also picks the mnist1d kernels; ``--dtype float32`` their iterative blocks).
"""

from __future__ import annotations

import argparse
import math
import resource
import time
import warnings

import numpy as np

from infdepth.estimators import InfiniteNetworkClassifier
from infdepth.kernels import Kernel
from infdepth.solvers.iterative import BLOCK_ENTRIES, DaskGramOperator, GramOperator, solve

CASES = [("relu", "ntk", 3), ("erf", "nngp", 10)]


def sphere(n: int, d: int, seed: int = 0) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def task(n: int, d: int = 40, seed: int = 0):
    """Points on S^{d-1}, 10 classes from the sign pattern of a few fixed directions."""
    X = sphere(n, d, seed)
    W = np.random.default_rng(99).standard_normal((d, 10))
    return X, np.argmax(X @ W + 0.3 * np.sin(5 * X[:, :10]), axis=1)


def floor_pass(X: np.ndarray, V: np.ndarray) -> float:
    rows = max(1, BLOCK_ENTRIES // X.shape[0])
    t = time.perf_counter()
    for i in range(0, X.shape[0], rows):
        B = X[i:i + rows] @ X.T
        np.exp(B, out=B)
        B @ V
    return time.perf_counter() - t


def section_epoch(n: int, repeats: int = 5) -> None:
    """Median of ``repeats`` passes each, the floor's and the kernels' interleaved."""
    X = sphere(n, 40)
    V = np.random.default_rng(1).standard_normal((n, 10))
    ops = {(act, kind, depth, dtype): GramOperator(Kernel(act, kind, depth, dtype=dtype), X)
           for act, kind, depth in CASES for dtype in ("float64", "float32")}
    for op in ops.values():
        op.matvec(V)  # tables built once
    times: dict = {key: [] for key in ("floor", *ops)}
    for _ in range(repeats):
        times["floor"].append(floor_pass(X, V))
        for key, op in ops.items():
            t = time.perf_counter()
            op.matvec(V)
            times[key].append(time.perf_counter() - t)
    floor = float(np.median(times["floor"]))
    print(f"[epoch] n={n} d=40 c=10: floor (X @ X.T + exp + product, full n x n, float64) "
          f"{floor:.2f} s (median of {repeats})")
    for (act, kind, depth, dtype), op in ops.items():
        sec = float(np.median(times[act, kind, depth, dtype]))
        print(f"[epoch] {act} {kind.upper()} depth {depth} {dtype} ({op.n_jobs} threads, upper "
              f"triangle): {sec:.2f} s, ratio to floor {sec / floor:.2f}")


def section_agree(n: int, n_test: int = 2000, tol: float = 1e-6, cases=None) -> None:
    X, y = task(n + n_test, seed=2)
    Xt, yt, X, y = X[n:], y[n:], X[:n], y[:n]
    for act, kind, depth in cases or CASES:
        t = time.perf_counter()
        dense = InfiniteNetworkClassifier(act, kind, depth, solver="dense",
                                          projection=None).fit(X, y)
        td = time.perf_counter() - t
        t = time.perf_counter()
        it = InfiniteNetworkClassifier(act, kind, depth, solver="iterative", tol=tol,
                                       projection=None).fit(X, y)
        ti = time.perf_counter() - t
        # raw outputs f (the dense path's carry a positive factor per row: divide each row
        # by its largest |f_c|), and the normalized D = f / sum_c f_c of decision_function,
        # whose gap is the raw one amplified by max_c |f_c| / sum_c f_c
        raw_d, raw_i = dense._outputs(Xt), it._outputs(Xt)
        raw_d /= np.max(np.abs(raw_d), axis=1, keepdims=True)
        raw_i /= np.max(np.abs(raw_i), axis=1, keepdims=True)
        gap = float(np.max(np.abs(raw_d - raw_i)))
        fd, fi = dense.decision_function(Xt), it.decision_function(Xt)
        gap_d = float(np.max(np.abs(fd - fi) / np.max(np.abs(fd), axis=1, keepdims=True)))
        amp = float(np.max(1 / np.abs(raw_d.sum(axis=1))))
        agree = float(np.mean(dense.predict(Xt) == it.predict(Xt)))
        print(f"[agree] n={n} {act} {kind.upper()} depth {depth}: labels agree {agree:.4%}, "
              f"max output gap / row's largest {gap:.2e} (normalized D: {gap_d:.2e}, "
              f"max_c|f_c| / sum_c f_c up to {amp:.0f}); dense fit {td:.1f} s ({dense.solver_}), "
              f"iterative {ti:.1f} s ({it.n_epochs_} epochs, residual {it.residual_:.1e}); "
              f"test acc {np.mean(it.predict(Xt) == yt):.3f}")


def section_large(n: int, n_test: int = 2000, dtype: str = "float64",
                  tol: float = 1e-6) -> None:
    """Fit + predict at n; memory as the process's peak resident set (ru_maxrss: every
    allocation, numpy's and BLAS's included; tracemalloc would slow the threaded pass)."""
    X, y = task(n + n_test, seed=3)
    Xt, yt, X, y = X[n:], y[n:], X[:n], y[:n]
    act, kind, depth = CASES[0]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t = time.perf_counter()
    clf = InfiniteNetworkClassifier(act, kind, depth, solver="iterative", tol=tol,
                                    dtype=dtype, projection=None, verbose=2).fit(X, y)
    tf = time.perf_counter() - t
    t = time.perf_counter()
    acc = float(np.mean(clf.predict(Xt) == yt))
    tp = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"[large] n={n} {act} {kind.upper()} depth {depth} {dtype} tol {tol:g}: "
          f"fit {tf:.1f} s ({clf.n_epochs_} epochs, residual {clf.residual_:.1e}), predict "
          f"{n_test} in {tp:.1f} s, test acc {acc:.3f}; peak RSS {rss / 2**30:.2f} GiB "
          f"(before the fit {rss0 / 2**30:.2f} GiB; dense K alone: {8 * n * n / 2**30:.1f} GiB)")


def section_dask(n: int) -> None:
    from dask.distributed import Client, LocalCluster

    X, y = task(n, seed=4)
    Y = np.eye(10)[y]
    kern = Kernel("relu", "ntk", 3)
    local = GramOperator(kern, X)
    local.matvec(Y)
    t = time.perf_counter()
    local.matvec(Y)
    t_local = time.perf_counter() - t
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        op = DaskGramOperator(client, kern, X)
        op.matvec(Y)  # workers build their tables
        t = time.perf_counter()
        op.matvec(Y)
        t_epoch = time.perf_counter() - t
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = solve(op, Y, tol=1e-6, max_iter=60)
        t_solve = time.perf_counter() - t
    scale = (1e6 / n) ** 2
    print(f"[dask] n={n}, LocalCluster 2 workers x 1 thread: epoch {t_epoch:.2f} s "
          f"(in-process {t_local:.2f} s, ratio {t_epoch / t_local:.2f}); solve "
          f"{t_solve:.1f} s, {res.n_epochs} epochs, residual {res.residual:.1e}")
    print(f"[dask] EXTRAPOLATION to n=10^6 on this 2-core machine (cost ~ n^2 per epoch): "
          f"{t_epoch * scale / 3600:.1f} h per epoch, x{res.n_epochs} epochs = "
          f"{t_epoch * scale * res.n_epochs / 3600:.0f} h; on W such machines / W")


def section_mnist1d(sizes: list[int], dtype: str = "float64", tol: float = 1e-6,
                    cases=None) -> None:
    """Test accuracy vs n; fits too large for the dense solve take the iterative one
    with the given dtype and tol (the dense ones keep the defaults). ``cases``: the
    (activation, kind, depth) to fit, default relu NTK 3, erf NNGP 10 and erf NNGP inf."""
    from infdepth.data import load_mnist1d
    from infdepth.solvers.dense import fits_in_memory

    print("[mnist1d] published (Greydanus 2020, 4000 train): logistic regression 32%, "
          "MLP 68%, CNN 94%")
    for n in sizes:
        X, y, Xt, yt = load_mnist1d(n)
        large = {} if fits_in_memory(n) else {"dtype": dtype, "tol": tol}
        for act, kind, depth in cases or [*CASES, ("erf", "nngp", math.inf)]:
            t = time.perf_counter()
            params = large if math.isfinite(depth) else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = InfiniteNetworkClassifier(act, kind, depth, **params).fit(X, y)
                acc = clf.score(Xt, yt)
            how = f"{clf.solver_}" + (f", {clf.n_epochs_} epochs, residual {clf.residual_:.1e}"
                                     if clf.solver_ == "cg" else "")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"[mnist1d] n={n} {act} {kind.upper()} depth {depth} {params or ''}: "
                  f"test acc {acc:.3f} ({clf.rule_}, {how}, {time.perf_counter() - t:.1f} s; "
                  f"process peak RSS so far {rss:.2f} GiB)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sections", nargs="+",
                   default=["epoch", "agree", "large", "dask", "mnist1d"])
    p.add_argument("--n-epoch", type=int, default=10_000)
    p.add_argument("--n-agree", type=int, default=10_000)
    p.add_argument("--n-large", type=int, default=100_000)
    p.add_argument("--n-dask", type=int, default=10_000)
    p.add_argument("--tol", type=float, default=1e-6,
                   help="agree, large, mnist1d: the iterative tol")
    p.add_argument("--dtype", default="float64",
                   help="large, mnist1d: the iterative kernel blocks' dtype")
    p.add_argument("--cases", nargs="+", default=None,
                   help="agree, mnist1d: e.g. erf:nngp:10 relu:ntk:3 erf:nngp:inf")
    p.add_argument("--mnist-n", type=int, nargs="+", default=[4000, 10_000])
    a = p.parse_args()
    cases = [(act, kind, math.inf if depth == "inf" else int(depth))
             for act, kind, depth in (c.split(":") for c in a.cases or [])]
    for s in a.sections:
        t = time.perf_counter()
        {"epoch": lambda: section_epoch(a.n_epoch),
         "agree": lambda: section_agree(a.n_agree, tol=a.tol, cases=cases),
         "large": lambda: section_large(a.n_large, dtype=a.dtype, tol=a.tol),
         "dask": lambda: section_dask(a.n_dask),
         "mnist1d": lambda: section_mnist1d(a.mnist_n, a.dtype, a.tol, cases)}[s]()
        print(f"[{s}] section took {time.perf_counter() - t:.0f} s", flush=True)


if __name__ == "__main__":
    main()
