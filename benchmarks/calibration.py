"""Calibration of predict_proba for every rule on real data sets.

For each data set (digits, breast_cancer, wine, iris) and each rule of
``InfiniteNetworkClassifier`` (finite-depth ``interpolation`` and ``complement``, and at
depth infinity ``singular``, ``nearest_neighbor``, ``majority_vote``,
``psi_interpolation``) plus the Hilbert estimate, on a stratified 70/30 split (seed 0):

* ``raw``: the vote share projected onto the simplex without smoothing (what
  ``predict_proba`` returned before the Laplace smoothing of the vote rules);
* ``default``: ``predict_proba`` as shipped;
* ``sigmoid``: ``CalibratedClassifierCV(estimator, method="sigmoid", cv=5)``
  (Platt scaling of ``decision_function``, one-vs-rest);
* ``temperature``: ``CalibratedClassifierCV(estimator, method="temperature", cv=5)``
  (one temperature T for softmax(decision_function / T); scikit-learn >= 1.8).

Metrics on the test split: accuracy, log loss, Brier score (multiclass: mean over samples
of sum_c (p_c - 1{y = c})^2), the expected calibration error of the top-class confidence
(15 equal-width bins), and the fraction of probabilities that are exactly 0 or 1.

    python benchmarks/calibration.py [--datasets digits wine] [--out table.md]

About two minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
from sklearn import datasets
from sklearn.calibration import CalibratedClassifierCV
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split

from infdepth import InfiniteNetworkClassifier, SingularKernelClassifier
from infdepth.estimators.outputs import normalize_outputs, simplex_projection

LOADERS = {
    "digits": datasets.load_digits,
    "breast_cancer": datasets.load_breast_cancer,
    "wine": datasets.load_wine,
    "iris": datasets.load_iris,
}


def models():
    """(label, rule expected, factory)."""
    return [
        ("erf NTK depth 3", "interpolation",
         lambda: InfiniteNetworkClassifier("erf", "ntk", 3)),
        ("relu NTK depth 3", "complement",
         lambda: InfiniteNetworkClassifier("relu", "ntk", 3)),
        ("erf NNGP depth inf", "singular",
         lambda: InfiniteNetworkClassifier("erf", "nngp", math.inf)),
        ("xi^2 NNGP depth inf", "nearest_neighbor",
         lambda: InfiniteNetworkClassifier("hermite", "nngp", math.inf,
                                           activation_params={"degree": 2})),
        ("relu NTK depth inf", "majority_vote",
         lambda: InfiniteNetworkClassifier("relu", "ntk", math.inf)),
        ("softplus NTK depth inf", "psi_interpolation",
         lambda: InfiniteNetworkClassifier("softplus", "ntk", math.inf)),
        ("Hilbert alpha=auto", "hilbert",
         lambda: SingularKernelClassifier(alpha="auto", random_state=0)),
    ]


def brier(P, y):
    onehot = np.eye(P.shape[1])[y]
    return float(np.mean(np.sum((P - onehot) ** 2, axis=1)))


def ece(P, y, bins=15):
    conf = P.max(axis=1)
    correct = P.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if sel.any():
            total += sel.mean() * abs(correct[sel].mean() - conf[sel].mean())
    return float(total)


def metrics(P, y):
    return dict(accuracy=float(np.mean(P.argmax(axis=1) == y)),
                log_loss=float(log_loss(y, np.clip(P, 1e-300, 1), labels=range(P.shape[1]))),
                brier=brier(P, y), ece=ece(P, y),
                exact_0_or_1=float(np.mean((P == 0) | (P == 1))))


def run(names):
    rows = []
    for name in names:
        X, y = LOADERS[name](return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        for label, rule, make in models():
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = make().fit(Xtr, ytr)
                assert clf.rule_ == rule, (label, clf.rule_)
                raw = simplex_projection(normalize_outputs(clf._outputs(Xte)))
                default = clf.predict_proba(Xte)
                found = [("raw", raw), ("default", default)]
                for method in ("sigmoid", "temperature"):
                    cal = CalibratedClassifierCV(make(), method=method, cv=5).fit(Xtr, ytr)
                    found.append((method, cal.predict_proba(Xte)))
            for variant, P in found:
                rows.append(dict(dataset=name, model=label, rule=rule, variant=variant,
                                 **metrics(P, yte)))
            print(f"{name:13s} {label:24s} {time.perf_counter() - t0:6.1f} s", flush=True)
    return rows


def markdown(rows):
    out = ["| data | model (rule) | accuracy | log loss raw / default / sigmoid / temp. | "
           "Brier raw / default / sigmoid / temp. | ECE raw / default / sigmoid / temp. | "
           "exact 0 or 1, raw / default |", "|---|---|---|---|---|---|---|"]
    keyed = {}
    for r in rows:
        keyed.setdefault((r["dataset"], r["model"], r["rule"]), {})[r["variant"]] = r
    for (data, model, rule), v in keyed.items():
        def three(key, v=v):
            return " / ".join(f"{v[k][key]:.3f}"
                              for k in ("raw", "default", "sigmoid", "temperature"))
        out.append(f"| {data} | {model} (`{rule}`) | {v['default']['accuracy']:.3f} | "
                   f"{three('log_loss')} | {three('brier')} | {three('ece')} | "
                   f"{v['raw']['exact_0_or_1']:.1%} / {v['default']['exact_0_or_1']:.1%} |")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--out", default=None, help="also write the markdown table here")
    args = parser.parse_args()
    table = markdown(run(args.datasets))
    print(table)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
