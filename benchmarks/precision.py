"""float32 against float64: speed, memory and accuracy, measured in the same run.

    python benchmarks/precision.py [--n 5000] [--train 200000] [--test 2000]

1. Gram matrix n x n (d = 100): ``Kernel(..., dtype="float32")`` vs float64, for a few
   kernels: time ratio, memory of the result, and accuracy (largest relative error over
   entries at least 1e-3 of their row's largest finite entry, and largest error relative
   to that entry). Deep erf values off the diagonal are ~1e-126 of it: only the second
   figure means anything there.
2. Depth-infinity prediction ``--test`` x ``--train`` (d = 16, erf NNGP singular rule and
   the Hilbert rule): time ratio, largest output difference relative to the row's
   largest output, and the fraction of predicted labels that agree.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from infdepth import InfiniteNetworkClassifier, Kernel, SingularKernelClassifier


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def sphere(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--train", type=int, default=200_000)
    parser.add_argument("--test", type=int, default=2000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    results = {"gram": {}, "predict": {}}

    X = sphere(rng, args.n, 100)
    print(f"1. Gram matrix {args.n} x {args.n}, d = 100")
    print(f"{'kernel':>22} {'f64 s':>7} {'f32 s':>7} {'ratio':>6} {'MiB':>11} "
          f"{'rel err':>9} {'err/row max':>11}")
    for name, kind, depth in (("relu", "ntk", 10), ("erf", "ntk", 10), ("erf", "ntk", 1000),
                              ("tanh", "nngp", math.inf)):
        k64, k32 = Kernel(name, kind, depth), Kernel(name, kind, depth, dtype="float32")
        k64(X[:10]), k32(X[:10])  # tables and compilation outside the timing
        t64, G64 = best_of(lambda k=k64: k(X))
        t32, G32 = best_of(lambda k=k32: k(X))
        finite = np.isfinite(G64)
        top = np.max(np.where(finite, np.abs(G64), 0), axis=1, keepdims=True)
        with np.errstate(invalid="ignore"):  # inf - inf on the diagonal at depth infinity
            err = np.where(finite, np.abs(G32 - G64), 0)
        big = finite & (np.abs(G64) >= 1e-3 * top)
        rel = float(np.max(err[big] / np.abs(G64[big])))
        row = float(np.max(err / top))
        label = f"{name} {kind} L={depth}"
        print(f"{label:>22} {t64:7.3f} {t32:7.3f} {t32 / t64:6.2f} "
              f"{G64.nbytes / 2**20:5.0f}/{G32.nbytes / 2**20:<5.0f} {rel:9.1e} {row:11.1e}")
        results["gram"][label] = {"f64_s": t64, "f32_s": t32, "ratio": t32 / t64,
                                  "rel_err": rel, "err_over_row_max": row}
        del G64, G32

    print(f"\n2. depth-infinity prediction, {args.test} test x {args.train} train, d = 16")
    Xt = sphere(rng, args.train, 16)
    y = (Xt[:, 0] + 0.3 * rng.standard_normal(args.train) > 0).astype(int)
    T = sphere(rng, args.test, 16)
    print(f"{'rule':>10} {'f64 s':>7} {'f32 s':>7} {'ratio':>6} {'out err/row max':>16} "
          f"{'labels agree':>13}")
    for label, make in (
        ("singular", lambda **kw: InfiniteNetworkClassifier(
            "erf", kernel="nngp", depth=math.inf, projection=None, **kw)),
        ("hilbert", lambda **kw: SingularKernelClassifier(alpha=15.0, projection=None, **kw)),
    ):
        c64, c32 = make().fit(Xt, y), make(dtype="float32").fit(Xt, y)
        c64.predict(T[:64]), c32.predict(T[:64])
        t64, f64 = best_of(lambda c=c64: c._outputs(T), 2)
        t32, f32 = best_of(lambda c=c32: c._outputs(T), 2)
        scale = np.max(np.abs(f64), axis=1, keepdims=True)
        err = float(np.max(np.abs(f32 - f64) / scale))
        agree = float(np.mean(np.argmax(f32, 1) == np.argmax(f64, 1)))
        print(f"{label:>10} {t64:7.2f} {t32:7.2f} {t32 / t64:6.2f} {err:16.1e} {agree:13.4f}")
        results["predict"][label] = {"f64_s": t64, "f32_s": t32, "ratio": t32 / t64,
                                     "err_over_row_max": err, "labels_agree": agree}
    return results


if __name__ == "__main__":
    main()
