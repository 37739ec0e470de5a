"""Bayes accuracy vs the designed activation's infinitely deep network, at n = 10^4.

For each of the paper's Dirichlet tasks (d = 2, 3, 5, 9, prior 0.4) draw 10,000 training
and 10,000 test points per seed, fit ``InfiniteNetworkClassifier(design_activation(
dimension=d - 1), depth=inf)`` (the limit rule, no solve) and compare its test accuracy
with the exact Bayes classifier's on the same points.

    python benchmarks/bayes_gap.py [--n 10000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import infdepth
from infdepth.data import paper_tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="training = test size")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    tasks = paper_tasks(prior=0.4)
    for d in (2, 3, 5, 9):
        task = tasks[d]
        network = infdepth.InfiniteNetworkClassifier(
            infdepth.design_activation(dimension=d - 1), depth=math.inf, projection=None)
        bayes, designed = [], []
        for seed in range(args.seeds):
            X, y = task.sample(args.n, np.random.default_rng([seed, d, 1]))
            Z, z = task.sample(args.n, np.random.default_rng([seed, d, 2]))
            designed.append(np.mean(network.fit(X, y).predict(Z) == z))
            bayes.append(np.mean(task.bayes_predict(Z) == z))
        gap = np.mean(bayes) - np.mean(designed)
        print(f"d={d}: Bayes {np.mean(bayes):.4f}  designed depth-inf {np.mean(designed):.4f}"
              f"  gap {100 * gap:.2f} pp  ({args.seeds} seeds, n = {args.n})", flush=True)


if __name__ == "__main__":
    main()
