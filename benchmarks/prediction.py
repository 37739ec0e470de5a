"""Bounded-memory prediction at depth infinity versus the inner-product floor.

Predicts ``--test`` points against ``--train`` training points in dimension ``--dim``
(default 10^4 x 10^6, d = 16, data uniform on the sphere S^15) with the depth-infinity
rule of an infinitely wide network (default: erf NNGP, the singular kernel rule), and
measures in the same run

* the floor: ``X_test @ X_train.T`` computed blockwise (row blocks of the test set sized by
  scikit-learn's ``working_memory``, every block's product reduced so nothing is kept), and
* ``predict``'s wall time and its peak memory beyond the fitted model: Python-level
  allocations (tracemalloc) and the process's peak resident set size (ru_maxrss).

Ratios are printed at the end. Usage::

    python benchmarks/prediction.py                      # the issue's 10^4 x 10^6 x 16
    python benchmarks/prediction.py --train 100000 --test 2000   # quick
"""

from __future__ import annotations

import argparse
import gc
import math
import resource
import time
import tracemalloc

import numpy as np
from sklearn import get_config
from sklearn.utils import gen_batches

from infdepth.estimators import InfiniteNetworkClassifier, SingularKernelClassifier


def sphere(n: int, d: int, rng) -> np.ndarray:
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor(X_test: np.ndarray, X_train: np.ndarray) -> float:
    """Seconds for X_test @ X_train.T in working_memory-sized row blocks."""
    rows = max(1, int(get_config()["working_memory"] * 2**20 // (8 * X_train.shape[0])))
    XtT = np.ascontiguousarray(X_train.T)
    out = np.empty((rows, X_train.shape[0]))
    checksum = 0.0
    start = time.perf_counter()
    for sl in gen_batches(X_test.shape[0], rows):
        block = np.matmul(X_test[sl], XtT, out=out[: sl.stop - sl.start])
        checksum += float(block[:, 0].sum())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=10**6)
    parser.add_argument("--test", type=int, default=10**4)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--rule",
                        choices=["singular", "hilbert", "nearest_neighbor", "majority_vote"],
                        default="singular")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    X_train = sphere(args.train, args.dim, rng)
    y_train = rng.integers(0, args.classes, args.train)
    X_test = sphere(args.test, args.dim, rng)
    data_mib = (X_train.nbytes + X_test.nbytes) / 2**20

    if args.rule == "hilbert":
        clf = SingularKernelClassifier(alpha=float(args.dim - 1), projection=None)
    else:
        act = {"singular": "erf", "nearest_neighbor": "hermite", "majority_vote": "relu"}[args.rule]
        params = {"degree": 2} if act == "hermite" else None
        clf = InfiniteNetworkClassifier(act, kernel="nngp", depth=math.inf, projection=None,
                                        activation_params=params)
    t0 = time.perf_counter()
    clf.fit(X_train, y_train)
    fit_s = time.perf_counter() - t0
    clf.predict(X_test[:64])  # compile / load the numba kernels and build the table

    # predict first (its peak memory is measured before the floor's large blocks exist),
    # then the floor, then both again: the machine's load may drift, the minima are used
    gc.collect()
    rss_before = maxrss_mib()
    tracemalloc.start()
    t0 = time.perf_counter()
    labels = clf.predict(X_test)
    predict_a = time.perf_counter() - t0
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = max(maxrss_mib() - rss_before, 0.0)
    floor_a = floor(X_test, X_train)
    t0 = time.perf_counter()
    again = clf.predict(X_test)
    predict_b = time.perf_counter() - t0
    floor_b = floor(X_test, X_train)
    assert np.array_equal(labels, again)
    floor_s, predict_s = min(floor_a, floor_b), min(predict_a, predict_b)

    print(f"rule                 : {clf.rule_} ({type(clf).__name__})")
    print(f"test x train x dim   : {args.test} x {args.train} x {args.dim}")
    wm = get_config()["working_memory"]
    print(f"data                 : {data_mib:.0f} MiB; working_memory {wm} MiB")
    print(f"fit                  : {fit_s:.2f} s")
    print(f"floor X_test @ X_train.T blockwise: {floor_a:.2f} s, again {floor_b:.2f} s")
    print(f"predict              : {predict_a:.2f} s, again {predict_b:.2f} s")
    print(f"predict peak memory  : {traced_peak / 2**20:.1f} MiB traced (numpy/Python), "
          f"process peak RSS grew by {rss_growth:.1f} MiB")
    print(f"class balance        : {np.bincount(labels, minlength=args.classes).tolist()}")
    print(f"RATIO time predict / floor         : {predict_s / floor_s:.2f}")
    print(f"RATIO predict peak memory / data   : {traced_peak / 2**20 / data_mib:.3f}")


if __name__ == "__main__":
    main()
