"""Kernel-engine performance, as ratios against baselines measured in the same run.

    python benchmarks/kernels.py [--activation erf] [--n 10000] [--quick]

1. Time per 10^7 evaluations of the normalized NTK at depths 1, 100, 10^4 and
   infinity, after the table is built (build times reported separately), as a ratio
   to depth 1.
2. The n x n Gram matrix (d = 100) at depth 1000, as a ratio to the floor
   ``X @ Z.T`` followed by one ``np.exp`` pass over the result.
3. The same Gram matrix against the naive depth-by-depth recursion over the full
   matrix (what existing code does), timed on a row subset and scaled linearly in
   the number of entries (its cost is exactly proportional to them).
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import numpy as np

import infdepth


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_ntk(xi: np.ndarray, act: infdepth.Activation, depth: int) -> np.ndarray:
    """Depth-by-depth recursion over the whole matrix, normalized at the end."""
    S, K = xi.copy(), xi.copy()
    for _ in range(depth):
        K = act.dual(S) + K * act.dual_derivative(S)
        S = act.dual(S)
    m = act.slope_at_one
    return K / ((m ** (depth + 1) - 1) / (m - 1))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activation", default="erf")
    parser.add_argument("--n", type=int, default=10_000, help="Gram matrix size n = m")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (n = 2000, 10^6 evals)")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else args.n
    evaluations = 10**6 if args.quick else 10**7
    act = infdepth.activation(args.activation)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}, activation {act.name}")

    # 1. evaluation cost vs depth
    xi = rng.uniform(-1, 1, evaluations)
    results = {"evaluations": evaluations, "depth": {}}
    base = None
    print(f"\n1. {evaluations:.0e} NTK evaluations after the table is built")
    print(f"{'depth':>8} {'build s':>9} {'eval s':>9} {'ratio to depth 1':>17}")
    for depth in (1, 100, 10_000, math.inf):
        start = time.perf_counter()
        k = infdepth.kernel_function(act, "ntk", depth)
        build = time.perf_counter() - start
        seconds = best_of(lambda k=k: k(xi))
        base = base or seconds
        results["depth"][str(depth)] = {"build_s": build, "eval_s": seconds,
                                        "ratio": seconds / base}
        print(f"{depth:>8} {build:9.3f} {seconds:9.3f} {seconds / base:17.2f}")

    # 2. Gram matrix vs the matmul + exp floor
    d, depth = 100, 1000
    X = rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Z = rng.normal(size=(n, d))
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    kernel = infdepth.Kernel(act, "ntk", depth)
    kernel(X[:10], Z[:10])  # build the table outside the timing

    def floor():
        G = X @ Z.T
        np.exp(G, out=G)
        return G

    t_floor = best_of(floor, 2)
    t_gram = best_of(lambda: kernel(X, Z), 2)
    print(f"\n2. Gram matrix {n} x {n}, d = {d}, depth {depth}")
    print(f"   floor X @ Z.T + exp: {t_floor:.3f} s; infdepth Kernel: {t_gram:.3f} s; "
          f"ratio {t_gram / t_floor:.2f} (goal <= 2)")

    # 3. naive recursion, timed on a row subset and scaled to the full matrix
    rows = max(1, min(n, 200_000 // n))
    sub = np.clip(X[:rows] @ Z.T, -1, 1)
    t_sub = best_of(lambda: naive_ntk(sub, act, depth), 1)
    t_naive = t_sub * n / rows
    check = np.max(np.abs(naive_ntk(sub, act, depth) - kernel(X[:rows], Z)))
    print(f"\n3. naive depth-by-depth recursion: {t_sub:.2f} s on {rows} x {n} entries, "
          f"{t_naive:.1f} s scaled to {n} x {n}; speed-up {t_naive / t_gram:.0f}x (goal >= 100); "
          f"max |difference| {check:.1e}")
    results.update(n=n, gram_s=t_gram, floor_s=t_floor, gram_over_floor=t_gram / t_floor,
                   naive_s_scaled=t_naive, speedup_vs_naive=t_naive / t_gram)
    return results


if __name__ == "__main__":
    main()
