"""``infdepth reproduce``: the paper's headline experiment, and the evidence beyond it.

Radhakrishnan, Belkin, Uhler, "Wide and deep neural networks achieve consistency for
classification" (PNAS 2023; arXiv 2204.14126). Four sections, each printing a table and
writing every number (CSV and JSON) and a PNG plot to the output folder:

1. **Synthetic experiment** (the paper's Figure): two Dirichlet classes on the sphere,
   prior 0.4, d = 2, 3, 5, 9. Per dimension: the exact Bayes accuracy, majority vote,
   1-NN, the Hilbert estimate (singular kernel ``||x - z||^-(d-1)``), and infinitely wide
   NTK networks with ReLU, erf, GELU, softplus, the sine family and the activation
   designed for that dimension, at the paper's finite depths and at depth infinity (the
   limiting rule, one per regime: ReLU and GELU give the majority vote, softplus the
   dual'(1) < 1 psi_interpolation rule that the paper's taxonomy misses, the others singular rules).
2. **Consistency**: excess error over the Bayes classifier versus the training size n,
   averaged over seeds, on a log-log plot with fitted slopes.
3. **Regression versus classification with depth** (the paper's closing claim): the
   output of the trained network tends to 0 away from the training points as the depth
   grows, so its squared error against a regression target grows with depth, while the
   accuracy of its sign does not fall.
4. **Taxonomy phase diagram** (from :mod:`infdepth.plots`).

Excess errors are computed exactly from the known posterior eta:
``E[|2 eta(x) - 1| 1{f(x) != f*(x)}]`` averaged over the test points, an unbiased estimate
of the excess risk with far less variance than the difference of two test accuracies.

Entry points: :func:`run` (Python), :func:`main` (command line) and
:func:`add_arguments` / :func:`run_from_args` (to mount as ``infdepth reproduce``).
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
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Sizes",
    "FULL",
    "QUICK",
    "sizes_for",
    "run",
    "main",
    "add_arguments",
    "run_from_args",
    "MissingComponent",
]

#: The sine family of the paper: dual sinh(a xi) / sinh(a), alpha close to 2, 4 and 8.
SINE_FAMILY = (2.676, 6.13539, 13.8258)


# ---------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Every size the reproduction uses; :data:`FULL` and :data:`QUICK` are the presets.

    Attributes
    ----------
    dimensions : ambient dimensions d of the synthetic tasks (section 1).
    n_train, n_test : sample sizes of section 1.
    finite_depths : NTK depths of the finite-depth networks of section 1.
    finite_n_train : training points used by the finite-depth networks of section 1 (a
        dense n x n solve); None means ``n_train``.
    consistency_dimensions, consistency_ns, consistency_seeds, consistency_n_test :
        section 2.
    consistency_solve_cap : largest n at which the methods that need a dense n x n solve
        (the finite-depth ReLU network, the psi rule) are fitted in section 2; the
        depth-infinity vote rules, the Hilbert estimate and 1-NN run at every n (the full
        run: up to 10^6 training points, 5 seeds).
    consistency_relu_depth : its depth.
    regression_dimension, regression_n_train, regression_n_test, regression_depths,
    regression_seeds : section 3.
    """

    dimensions: tuple[int, ...] = (2, 3, 5, 9)
    n_train: int = 10_000
    n_test: int = 10_000
    finite_depths: tuple[int, ...] = (50, 200)
    finite_n_train: int | None = None
    consistency_dimensions: tuple[int, ...] = (2, 3)
    consistency_ns: tuple[int, ...] = (100, 316, 1_000, 3_162, 10_000, 31_623, 100_000,
                                       316_228, 1_000_000)
    consistency_seeds: int = 5
    consistency_n_test: int = 5_000
    consistency_solve_cap: int = 10_000
    consistency_relu_depth: int = 50
    regression_dimension: int = 3
    regression_n_train: int = 2_000
    regression_n_test: int = 5_000
    regression_depths: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 1_000, 10_000, 10**6)
    regression_seeds: int = 3

    def scaled(self, scale: float) -> Sizes:
        """The same preset with every sample size multiplied by ``scale`` (at least 20)."""
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a positive number, got {scale!r}")

        def s(n: int) -> int:
            return max(20, int(round(n * scale)))

        ns = tuple(sorted({s(n) for n in self.consistency_ns}))
        return replace(
            self,
            n_train=s(self.n_train),
            n_test=s(self.n_test),
            finite_n_train=None if self.finite_n_train is None else s(self.finite_n_train),
            consistency_ns=ns,
            consistency_n_test=s(self.consistency_n_test),
            consistency_solve_cap=s(self.consistency_solve_cap),
            regression_n_train=s(self.regression_n_train),
            regression_n_test=s(self.regression_n_test),
        )


#: The full run: the paper's sizes (10,000 training and 10,000 test points).
FULL = Sizes()

#: ``--quick``: a few minutes on 2 CPU cores.
QUICK = Sizes(
    n_train=1_500,
    n_test=1_500,
    finite_depths=(50, 200),
    finite_n_train=1_000,
    consistency_ns=(100, 300, 1_000, 3_000, 10_000),
    consistency_seeds=2,
    consistency_n_test=1_000,
    consistency_solve_cap=3_000,
    regression_n_train=800,
    regression_n_test=1_000,
    regression_depths=(1, 2, 3, 5, 10, 20, 50, 1_000, 10**6),
    regression_seeds=2,
)


def sizes_for(quick: bool = False, scale: float = 1.0, **overrides: Any) -> Sizes:
    """The preset (:data:`QUICK` or :data:`FULL`), scaled, with fields overridden."""
    sizes = QUICK if quick else FULL
    if scale != 1.0:
        sizes = sizes.scaled(scale)
    names = {f.name for f in fields(Sizes)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown size fields {sorted(unknown)}; known: {sorted(names)}")
    return replace(sizes, **overrides)


# ---------------------------------------------------------------------------------------
# Components written elsewhere in the package
# ---------------------------------------------------------------------------------------


class MissingComponent(RuntimeError):
    """A part of infdepth that a section needs is not available in this installation."""


def _component(module: str, name: str) -> Any:
    import importlib

    try:
        mod = importlib.import_module(f"infdepth.{module}")
    except ImportError as exc:
        raise MissingComponent(f"infdepth.{module} is not available ({exc})") from None
    try:
        return getattr(mod, name)
    except AttributeError:
        raise MissingComponent(f"infdepth.{module} has no {name!r}") from None


def _on_sphere_params(cls: type) -> dict[str, Any]:
    """Constructor arguments telling an estimator that the data already lie on the sphere."""
    try:
        params = cls().get_params()
    except Exception:  # pragma: no cover - defensive
        return {}
    if "projection" in params:
        return {"projection": None}
    if "project" in params:
        return {"project": False}
    if "on_sphere" in params:
        return {"on_sphere": True}
    return {}


def _network(act: Any, depth: Any, kernel: str = "ntk") -> Any:
    cls = _component("estimators", "InfiniteNetworkClassifier")
    return cls(activation=act, kernel=kernel, depth=depth, ridge=0.0, **_on_sphere_params(cls))


def _hilbert(alpha: float) -> Any:
    cls = _component("estimators", "SingularKernelClassifier")
    return cls(alpha=alpha, **_on_sphere_params(cls))


# Activations are cached so that their kernel tables (cached on the Activation object) are
# built once per run, not once per dimension and seed.
_ACTIVATIONS: dict[tuple, Any] = {}


def _designed(dimension: int) -> Any:
    key = ("designed", dimension)
    if key not in _ACTIVATIONS:
        design = _component("design", "design_activation")
        _ACTIVATIONS[key] = design(dimension=dimension)
    return _ACTIVATIONS[key]


def _activation(name: str, **params: Any) -> Any:
    from .activations import activation

    key = (name, *sorted(params.items()))
    if key not in _ACTIVATIONS:
        _ACTIVATIONS[key] = activation(name, **params)
    return _ACTIVATIONS[key]


# ---------------------------------------------------------------------------------------
# Small utilities: progress, tables, files, plots
# ---------------------------------------------------------------------------------------


def _progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled=True):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True,
                file=sys.stderr)


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if value is None:
        return "-"
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    cells = [[_fmt(v, digits) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
              for i, h in enumerate(headers)]
    line = "  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for r in cells:
        out.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                             for c, w in zip(r, widths, strict=True)))
    return "\n".join(out)


def _cell(text: str) -> str:
    """A markdown table cell: pipes escaped (``max |f|`` must not split the cell)."""
    return str(text).replace("|", "\\|")


def _markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(_cell(_fmt(v, digits)) for v in row) + " |")
    return "\n".join(out)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """Replace non-finite floats by None (strict JSON) and infinite depths by "inf"."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return None if math.isnan(v) else v
    return obj


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(_clean(obj), indent=2, default=_json_default) + "\n")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row.get(k)) for k in keys})


def _csv_value(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return "" if v is None else v


def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.4):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global backend change)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is optional
        raise MissingComponent(f"matplotlib is needed for plots ({exc})") from None
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _depth_label(depth: Any) -> str:
    return "inf" if depth == math.inf else str(depth)


def _seed(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) for p in parts])


def _excess_error(task: Any, X: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(exact excess error estimate, fraction of test points where pred != Bayes)."""
    eta = task.posterior(X)
    differs = np.asarray(pred) != task.bayes_predict(X)
    return float(np.mean(np.abs(2 * eta - 1) * differs)), float(np.mean(differs))


def _timed_fit_predict(model: Any, Xtr, ytr, Xte) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # an ill-conditioned Gram matrix is reported through the solver columns instead
        warnings.simplefilter("ignore")
        model.fit(Xtr, ytr)
        pred = np.asarray(model.predict(Xte))
    return pred, time.perf_counter() - t0


def _solver_info(model: Any, n: int) -> dict[str, Any]:
    """How a fitted network solved its linear system (None for the direct rules), with
    its effective rank: the eigen-directions kept out of n (n - discarded_directions)."""
    solver = getattr(model, "solver_", None)
    discarded = getattr(model, "n_discarded_", None)
    rank = n - int(discarded) if solver is not None and discarded is not None else None
    return dict(rule=getattr(model, "rule_", None), solver=solver,
                discarded_directions=discarded if solver is not None else None,
                effective_rank=rank)


#: Explicit ridge of the "ridge" rows, relative to the kernel's spread max(1 - k(x_i, x_j))
#: (the scale of the system that the complement-coordinate and psi solves see).
RELATIVE_RIDGE = 1e-3


class _RelativeRidge:
    """A complement-coordinate or psi network with an explicit ridge: the Gram system
    J - t E is solved as J - t (E - rho I), i.e. with ridge rho * t where
    t = max(1 - k) (for the psi rule, t -> 0: [-Psi + rho max(Psi) I, 1; 1^T, 0])."""

    def __init__(self, make: Callable[[], Any], rho: float = RELATIVE_RIDGE):
        self.make, self.rho = make, rho

    def fit(self, X, y):
        from .solvers.dense import complement_solve as _complement_solve

        # fitted with a unit ridge first: a cheap Cholesky (finite depth) or no solve at
        # all (depth infinity: a ridge > 0 there is the majority vote), instead of the
        # eigendecomposition that the ridge-free fit would run; the system is then
        # rebuilt and solved below with the relative ridge
        model = self.make().set_params(ridge=1.0).fit(X, y)
        if model.rule_ == "majority_vote" and model.attractor_ == "one":
            model.rule_ = "psi_interpolation"
        model.set_params(ridge=0.0)
        if model.rule_ not in ("complement", "psi_interpolation"):
            raise ValueError(f"a relative ridge applies to the complement and psi rules, not "
                             f"{model.rule_!r}")
        infinite = model.rule_ == "psi_interpolation"
        fn = model._function(math.inf if infinite else None)
        log_e = fn.log_complement(*model._train_pairs())
        log_e = np.minimum(log_e, log_e.T)
        np.fill_diagonal(log_e, -np.inf)
        top = float(np.max(log_e))
        top = top if np.isfinite(top) else 0.0
        with np.errstate(under="ignore"):
            E = np.exp(log_e - top)
        E[np.diag_indices_from(E)] -= self.rho
        t = 0.0 if infinite else math.exp(top)
        c0, beta, model.solver_, model.n_discarded_ = _complement_solve(E, model._onehot(), t)
        model._log_scale, model.intercept_, model.dual_coef_ = top, c0, beta
        self.model_ = model
        self.rule_, self.solver_ = model.rule_, model.solver_
        self.n_discarded_ = model.n_discarded_
        return self

    def predict(self, X):
        return self.model_.predict(X)


# ---------------------------------------------------------------------------------------
# Section 1: the paper's synthetic experiment
# ---------------------------------------------------------------------------------------


def _synthetic_methods(d: int, sizes: Sizes) -> list[tuple[str, str, Any, Callable[[], Any]]]:
    """(method, activation name, depth, factory) for dimension d; factories may raise."""
    from sklearn.dummy import DummyClassifier
    from sklearn.neighbors import KNeighborsClassifier

    out: list[tuple[str, str, Any, Callable[[], Any]]] = [
        ("majority vote", "-", None, lambda: DummyClassifier(strategy="most_frequent")),
        ("1-NN", "-", None, lambda: KNeighborsClassifier(n_neighbors=1)),
        (f"Hilbert estimate (alpha={d - 1})", "-", math.inf, lambda: _hilbert(float(d - 1))),
    ]
    acts: list[tuple[str, Callable[[], Any]]] = [
        ("relu", lambda: _activation("relu")),
        ("erf", lambda: _activation("erf")),
        # the two regimes outside the singular class with a non-trivial limit: GELU's
        # interior fixed point (majority vote) and softplus's dual'(1) < 1 (psi_interpolation)
        ("gelu", lambda: _activation("gelu")),
        ("softplus", lambda: _activation("softplus")),
    ]
    acts += [(f"sine a={a:g}", lambda a=a: _activation("sine_family", a=a)) for a in SINE_FAMILY]
    acts.append((f"designed (dimension {d - 1})", lambda: _designed(d - 1)))
    for name, make_act in acts:
        for depth in (*sizes.finite_depths, math.inf):
            out.append((f"NTK {name}, depth {_depth_label(depth)}", name, depth,
                        lambda make_act=make_act, depth=depth: _network(make_act(), depth)))
            if name == "softplus":  # few resolvable directions: the same with a ridge
                out.append((f"NTK {name}, depth {_depth_label(depth)}, ridge "
                            f"{RELATIVE_RIDGE:g} rel.", name, depth,
                            lambda make_act=make_act, depth=depth: _RelativeRidge(
                                lambda: _network(make_act(), depth))))
    return out


def section_synthetic(sizes: Sizes, seed: int, progress: bool, log: Callable) -> dict:
    from .data import paper_tasks

    tasks = paper_tasks(prior=0.4)
    rows: list[dict[str, Any]] = []
    plan = [(d, m) for d in sizes.dimensions for m in _synthetic_methods(d, sizes)]
    data = {}
    for d in sizes.dimensions:
        task = tasks[d]
        Xtr, ytr = task.sample(sizes.n_train, _seed(seed, d, 1))
        Xte, yte = task.sample(sizes.n_test, _seed(seed, d, 2))
        data[d] = (Xtr, ytr, Xte, yte)
        bayes_pred = task.bayes_predict(Xte)
        rows.append(dict(dimension=d, method="Bayes (exact)", activation="-", depth=None,
                         n_train=0, n_test=sizes.n_test,
                         accuracy=float(np.mean(bayes_pred == yte)), excess_error=0.0,
                         disagreement=0.0, seconds=0.0, error=None))
    n_fin = sizes.finite_n_train or sizes.n_train
    for d, (method, act_name, depth, factory) in _progress(
        plan, total=len(plan), desc="synthetic", enabled=progress
    ):
        task = tasks[d]
        Xtr, ytr, Xte, yte = data[d]
        n = n_fin if (depth is not None and depth != math.inf) else sizes.n_train
        row = dict(dimension=d, method=method, activation=act_name,
                   depth=_depth_label(depth) if depth is not None else None,
                   n_train=n, n_test=sizes.n_test, accuracy=math.nan, excess_error=math.nan,
                   disagreement=math.nan, seconds=math.nan, error=None)
        try:
            model = factory()
            pred, seconds = _timed_fit_predict(model, Xtr[:n], ytr[:n], Xte)
            excess, disagree = _excess_error(task, Xte, pred)
            row.update(accuracy=float(np.mean(pred == yte)), excess_error=excess,
                       disagreement=disagree, seconds=seconds, **_solver_info(model, n))
        except MissingComponent as exc:
            row["error"] = f"skipped: {exc}"
        except Exception as exc:  # a failing configuration is reported, not hidden
            row["error"] = f"{type(exc).__name__}: {exc}"
            log(f"  [synthetic d={d}] {method} failed: {row['error']}")
        rows.append(row)
    rows.sort(key=lambda r: (r["dimension"], r["method"] != "Bayes (exact)"))

    missing = sorted({r["error"] for r in rows if r["error"] and r["error"].startswith("skip")})
    headline = {}
    for d in sizes.dimensions:
        by = {r["method"]: r for r in rows if r["dimension"] == d}
        designed = [r for r in rows if r["dimension"] == d and r["activation"].startswith(
            "designed") and r["depth"] == "inf"]
        headline[d] = dict(
            bayes_accuracy=by["Bayes (exact)"]["accuracy"],
            designed_depth_inf_accuracy=designed[0]["accuracy"] if designed else math.nan,
            designed_depth_inf_excess_error=designed[0]["excess_error"] if designed
            else math.nan,
            one_nn_accuracy=by["1-NN"]["accuracy"],
            n_train=sizes.n_train,
        )
    return dict(rows=rows, headline=headline, missing=missing)


def _report_synthetic(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    rows = result["rows"]
    _write_csv(out / "synthetic.csv", rows)
    _write_json(out / "synthetic.json", result)
    dims = sorted({r["dimension"] for r in rows})
    methods: list[str] = []
    for r in rows:
        key = _method_key(r)
        if key not in methods:
            methods.append(key)
    acc = {(r["dimension"], _method_key(r)): r for r in rows}
    headers = ["method", *[f"d={d} acc" for d in dims], *[f"d={d} excess" for d in dims],
               *[f"d={d} rank" for d in dims]]
    table_rows = []
    for m in methods:
        accs = [acc.get((d, m), {}).get("accuracy", math.nan) for d in dims]
        excess = [acc.get((d, m), {}).get("excess_error", math.nan) for d in dims]
        table_rows.append([m, *accs, *excess, *[_rank_text(acc.get((d, m), {})) for d in dims]])
    log(f"\n[1] Synthetic Dirichlet tasks: n_train = {sizes.n_train} (finite-depth networks "
        f"{sizes.finite_n_train or sizes.n_train}), n_test = {sizes.n_test}; test accuracy and "
        "exact excess error over Bayes")
    log(_table(headers, table_rows))
    for msg in result["missing"]:
        log(f"  note: {msg}")
    files = ["synthetic.csv", "synthetic.json"]
    try:
        _plot_synthetic(rows, dims, methods, out / "synthetic.png")
        files.append("synthetic.png")
    except MissingComponent as exc:
        log(f"  no plot: {exc}")
    md = [f"## 1. Synthetic Dirichlet tasks (n_train = {sizes.n_train}, n_test = {sizes.n_test})",
          "", "Test accuracy (`acc`), exact excess error over the Bayes classifier "
          "(`excess`) and, for the methods that solve a linear system, the effective rank "
          "(`rank` = eigen-directions kept / training points, n - discarded_directions). "
          "A rank far below n means the network is not interpolating: it is a low-rank "
          "least-squares fit (docs/theory.md section 4.3); the rows marked `ridge "
          f"{RELATIVE_RIDGE:g} rel.` solve the same system with an explicit ridge of "
          f"{RELATIVE_RIDGE:g} x max(1 - k) instead of the pseudo-inverse.", "",
          _markdown(headers, table_rows), ""]
    if "synthetic.png" in files:
        md += ["![synthetic: excess error of every method](synthetic.png)", ""]
    result["markdown"] = "\n".join(md)
    return files


def _method_key(row: dict) -> str:
    """The method's name with its dimension-dependent part written as d-1."""
    D = row["dimension"] - 1
    return row["method"].replace(f"(dimension {D})", "(dimension d-1)").replace(
        f"(alpha={D})", "(alpha=d-1)")


def _rank_text(row: dict) -> str:
    """``rank/n`` for a method that solved a linear system, "-" otherwise."""
    rank = row.get("effective_rank")
    if rank is None or (isinstance(rank, float) and not math.isfinite(rank)):
        return "-"
    return f"{int(round(rank))}/{row.get('n_train', '?')}"


#: Excess errors below this are drawn at this floor on the log axes (marked as zero).
PLOT_FLOOR = 1e-4


def _plot_synthetic(rows, dims, methods, path: Path) -> None:
    """Excess error over Bayes (log scale) of every method, one horizontal bar per
    (method, dimension); effective ranks written beside the bars of the solved methods,
    zero excess (predictions equal to Bayes's) drawn at the floor with a '0' mark."""
    methods = [m for m in methods if m != "Bayes (exact)"]
    height = 0.8 / max(1, len(dims))
    fig, (ax,) = _figure(width=10.5, height=max(5.0, 0.42 * len(methods) * max(1, len(dims))
                                                 / 2.2 + 1.5))
    y = np.arange(len(methods))[::-1].astype(float)
    lookup = {(r["dimension"], _method_key(r)): r for r in rows}
    floor_drawn = False
    for i, d in enumerate(dims):
        vals = np.array([lookup.get((d, m), {}).get("excess_error", math.nan)
                         for m in methods], dtype=float)
        pos = y + ((len(dims) - 1) / 2 - i) * height
        shown = np.where(np.isfinite(vals), np.maximum(vals, PLOT_FLOOR), np.nan)
        bars = ax.barh(pos, shown, height, label=f"d = {d}", color=f"C{i}")
        for j, (v, m) in enumerate(zip(vals, methods, strict=True)):
            row = lookup.get((d, m), {})
            if math.isfinite(v) and v < PLOT_FLOOR:
                ax.text(PLOT_FLOOR * 1.15, pos[j], "0", va="center", fontsize=6,
                        color=bars[j].get_facecolor())
                floor_drawn = True
            rank = _rank_text(row)
            full = row.get("effective_rank") == row.get("n_train")
            if rank != "-" and not full and math.isfinite(v):
                ax.text(max(v, PLOT_FLOOR) * 1.12, pos[j], f"rank {rank}", va="center",
                        fontsize=5.5, color="0.25")
    ax.set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    def _minor(v, _):  # label 2 and 5 x each power of ten too
        lead = round(v / 10 ** math.floor(math.log10(v)))
        return f"{v:g}" if lead in (2, 5) else ""

    ax.xaxis.set_minor_formatter(FuncFormatter(_minor))
    ax.tick_params(axis="x", which="minor", labelsize=6)
    ax.set_yticks(y, methods, fontsize=7)
    ax.set_ylim(-0.6, len(methods) - 0.4)
    ax.set_xlabel("excess error over the Bayes classifier (exact; log scale, lower is better)")
    title = ("Dirichlet tasks: networks of finite and infinite depth vs the Bayes rule\n"
             "'rank r/n': a solve that kept only r of n eigen-directions (not interpolating)")
    if floor_drawn:
        title += f"; '0': no excess error (drawn at {PLOT_FLOOR:g})"
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", which="both", alpha=0.3)
    xmax = np.nanmax([r.get("excess_error", math.nan) for r in rows
                      if isinstance(r.get("excess_error"), float)] + [PLOT_FLOOR])
    xmin = PLOT_FLOOR * 0.7 if floor_drawn else max(PLOT_FLOOR * 0.7, np.nanmin(
        [r["excess_error"] for r in rows if isinstance(r.get("excess_error"), float)
         and r["excess_error"] > 0] + [xmax]) / 2)
    ax.set_xlim(xmin, max(xmax, PLOT_FLOOR) * 6)  # room for the rank labels
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------
# Section 2: consistency
# ---------------------------------------------------------------------------------------


def _consistency_methods(d: int, sizes: Sizes):
    from sklearn.neighbors import KNeighborsClassifier

    L = sizes.consistency_relu_depth
    return [
        (f"designed (dimension {d - 1}), depth inf", None,
         lambda: _network(_designed(d - 1), math.inf)),
        (f"Hilbert estimate (alpha={d - 1})", None, lambda: _hilbert(float(d - 1))),
        ("erf, depth inf", None, lambda: _network(_activation("erf"), math.inf)),
        # the fourth regime (dual'(1) < 1): psi interpolation, a dense solve
        ("softplus, depth inf (psi_interpolation)", sizes.consistency_solve_cap,
         lambda: _network(_activation("softplus"), math.inf)),
        (f"softplus, depth inf (psi_interpolation), ridge {RELATIVE_RIDGE:g} rel.",
         sizes.consistency_solve_cap,
         lambda: _RelativeRidge(lambda: _network(_activation("softplus"), math.inf))),
        (f"relu, depth {L}", sizes.consistency_solve_cap,
         lambda: _network(_activation("relu"), L)),
        ("1-NN", None, lambda: KNeighborsClassifier(n_neighbors=1)),
    ]


def fit_slope(ns: Sequence[float], errors: Sequence[float]) -> float:
    """Least-squares slope of log(error) against log(n) over the positive errors."""
    ns = np.asarray(ns, dtype=float)
    errors = np.asarray(errors, dtype=float)
    ok = np.isfinite(errors) & (errors > 0)
    if ok.sum() < 2:
        return math.nan
    return float(np.polyfit(np.log(ns[ok]), np.log(errors[ok]), 1)[0])


def section_consistency(sizes: Sizes, seed: int, progress: bool, log: Callable) -> dict:
    from .data import paper_tasks

    tasks = paper_tasks(prior=0.4)
    runs: list[dict[str, Any]] = []
    plan = []
    for d in sizes.consistency_dimensions:
        for s in range(sizes.consistency_seeds):
            for n in sizes.consistency_ns:
                for method, cap, factory in _consistency_methods(d, sizes):
                    if cap is None or n <= cap:
                        plan.append((d, s, n, method, factory))
    cache: dict[tuple[int, int], tuple] = {}
    errors: dict[str, str] = {}
    for d, s, n, method, factory in _progress(plan, total=len(plan), desc="consistency",
                                              enabled=progress):
        task = tasks[d]
        if (d, s) not in cache:
            n_max = max(sizes.consistency_ns)
            cache.clear()
            cache[(d, s)] = (*task.sample(n_max, _seed(seed, 100 + d, s, 1)),
                             *task.sample(sizes.consistency_n_test, _seed(seed, 100 + d, s, 2)))
        Xtr, ytr, Xte, yte = cache[(d, s)]
        if method in errors:
            continue
        try:
            model = factory()
            pred, seconds = _timed_fit_predict(model, Xtr[:n], ytr[:n], Xte)
        except MissingComponent as exc:
            errors[method] = f"skipped: {exc}"
            continue
        except Exception as exc:
            errors[method] = f"{type(exc).__name__}: {exc}"
            log(f"  [consistency d={d}] {method} failed at n={n}: {errors[method]}")
            continue
        excess, _ = _excess_error(task, Xte, pred)
        runs.append(dict(dimension=d, seed=s, n=n, method=method, excess_error=excess,
                         test_error=float(np.mean(pred != yte)),
                         bayes_test_error=float(np.mean(task.bayes_predict(Xte) != yte)),
                         seconds=seconds, **_solver_info(model, n)))
    # average over seeds: mean, standard error, effective rank; slope of the means and
    # the standard error of the per-seed slopes
    means: list[dict[str, Any]] = []
    slopes: dict[int, dict[str, float]] = {}
    slope_errors: dict[int, dict[str, float]] = {}
    caps: dict[str, int | None] = {}
    for d in sizes.consistency_dimensions:
        slopes[d], slope_errors[d] = {}, {}
        for method, cap, _ in _consistency_methods(d, sizes):
            caps[method] = cap
            sel = [r for r in runs if r["dimension"] == d and r["method"] == method]
            ns = sorted({r["n"] for r in sel})
            mean_err = []
            for n in ns:
                at = [r for r in sel if r["n"] == n]
                vals = np.array([r["excess_error"] for r in at])
                ranks = [r["effective_rank"] for r in at if r.get("effective_rank") is not None]
                mean_err.append(float(vals.mean()))
                std = float(vals.std(ddof=1)) if vals.size > 1 else math.nan
                means.append(dict(dimension=d, method=method, n=n, seeds=int(vals.size),
                                  mean_excess_error=float(vals.mean()),
                                  std_excess_error=std,
                                  stderr_excess_error=std / math.sqrt(vals.size),
                                  effective_rank=float(np.mean(ranks)) if ranks else None))
            if ns:
                slopes[d][method] = fit_slope(ns, mean_err)
                per_seed = [fit_slope([r["n"] for r in sel if r["seed"] == k],
                                      [r["excess_error"] for r in sel if r["seed"] == k])
                            for k in range(sizes.consistency_seeds)]
                per_seed = [v for v in per_seed if math.isfinite(v)]
                slope_errors[d][method] = (float(np.std(per_seed, ddof=1)
                                                 / math.sqrt(len(per_seed)))
                                           if len(per_seed) > 1 else math.nan)
    return dict(runs=runs, means=means, slopes=slopes, slope_errors=slope_errors, caps=caps,
                errors=errors)


def _mean_se(mean: float, se: float) -> str:
    if not math.isfinite(se):
        return _fmt(mean)
    return f"{_fmt(mean)} +- {se:.2g}"


def _report_consistency(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    _write_csv(out / "consistency_runs.csv", result["runs"])
    _write_csv(out / "consistency.csv", result["means"])
    _write_json(out / "consistency.json", result)
    ns = sorted({r["n"] for r in result["means"]})
    caps = result.get("caps", {})
    capped = sorted({c for c in caps.values() if c is not None and c < max(ns, default=0)})
    intro = (f"mean exact excess error over Bayes +- its standard error over "
             f"{sizes.consistency_seeds} seeds ({sizes.consistency_n_test} test points per "
             "seed); slope: least-squares slope of log(mean excess) vs log(n) +- the "
             "standard error of the per-seed slopes; rank: effective rank (eigen-directions "
             "kept / n) of the methods that solve a linear system, at their largest n.")
    cap_note = (f"Cells marked `cap`: the method needs a dense n x n solve and is fitted only "
                f"up to n = {', '.join(map(str, capped))} (Sizes.consistency_solve_cap); the "
                "vote rules need no solve and run at every n." if capped else "")
    log(f"\n[2] Consistency: {intro}")
    md = ["## 2. Consistency", "", intro[0].upper() + intro[1:], ""]
    if cap_note:
        log("  " + cap_note)
        md += [cap_note, ""]
    for d in sizes.consistency_dimensions:
        methods = list(result["slopes"].get(d, {}))
        lookup = {(r["method"], r["n"]): r for r in result["means"] if r["dimension"] == d}
        headers = ["method", *[f"n={n}" for n in ns], "slope", "rank"]
        rows = []
        for m in methods:
            cells = []
            for n in ns:
                r = lookup.get((m, n))
                if r is None:
                    cap = caps.get(m)
                    cells.append("cap" if cap is not None and n > cap else "-")
                else:
                    cells.append(_mean_se(r["mean_excess_error"], r["stderr_excess_error"]))
            last = max((r for (mm, _), r in lookup.items() if mm == m), key=lambda r: r["n"],
                       default=None)
            rank = ("-" if last is None or last.get("effective_rank") is None
                    else f"{last['effective_rank']:.0f}/{last['n']}")
            slope = result["slopes"][d][m]
            cells.append(_mean_se(slope, result.get("slope_errors", {}).get(d, {}).get(
                m, math.nan)))
            rows.append([m, *cells, rank])
        log(f"  d = {d} (data on S^{d - 1})")
        log(_table(headers, rows))
        md += [f"**d = {d}**", "", _markdown(headers, rows), ""]
    for method, msg in result["errors"].items():
        log(f"  note: {method}: {msg}")
        md.append(f"- {method}: {msg}")
    files = ["consistency.csv", "consistency_runs.csv", "consistency.json"]
    try:
        _plot_consistency(result, sizes, out / "consistency.png")
        files.append("consistency.png")
        md += ["", "![consistency: excess error vs n](consistency.png)", ""]
    except MissingComponent as exc:
        log(f"  no plot: {exc}")
    result["markdown"] = "\n".join(md)
    return files


_CONSISTENCY_STYLES = ["o-", "s--", "^-.", "D:", "v-", "P--", "X-."]


def _plot_consistency(result: dict, sizes: Sizes, path: Path) -> None:
    dims = list(sizes.consistency_dimensions)
    fig, axes = _figure(ncols=len(dims), width=5.6, height=5.6)
    handles: dict[str, Any] = {}
    from matplotlib.ticker import NullFormatter

    for ax, d in zip(axes, dims, strict=True):
        placed: list[tuple[float, float]] = []
        for k, (method, slope) in enumerate(result["slopes"].get(d, {}).items()):
            sel = sorted((r["n"], r["mean_excess_error"], r["stderr_excess_error"],
                          r.get("effective_rank")) for r in result["means"]
                         if r["dimension"] == d and r["method"] == method)
            ns = np.array([v[0] for v in sel], dtype=float)
            err = np.array([v[1] for v in sel])
            se = np.array([v[2] for v in sel], dtype=float)
            pos = err > 0
            se = np.where(np.isfinite(se), se, 0.0)
            # error bars on a log axis: clip the lower end above 0
            lower = np.minimum(se, err * 0.95)
            style = _CONSISTENCY_STYLES[k % len(_CONSISTENCY_STYLES)]
            # alternate filled and larger hollow markers: coinciding curves stay visible
            hollow = dict(mfc="none", ms=7, mew=1.3) if k % 2 else dict(ms=4)
            cont = ax.errorbar(ns[pos], err[pos], yerr=[lower[pos], se[pos]], fmt=style,
                               lw=1.2, capsize=2, color=f"C{k}", alpha=0.9, **hollow)
            generic = method.replace(f"(dimension {d - 1})", "(dimension d-1)").replace(
                f"(alpha={d - 1})", "(alpha=d-1)")
            handles.setdefault(generic, cont)
            if not pos.any():
                continue
            text = []
            if np.isfinite(slope) and pos.sum() >= 2:
                c = np.polyfit(np.log(ns[pos]), np.log(err[pos]), 1)
                ax.plot(ns, np.exp(np.polyval(c, np.log(ns))), ":", color=f"C{k}", lw=0.8,
                        alpha=0.6)
                text.append(f"slope {slope:.2f}")
            if sel and sel[-1][3] is not None:
                text.append(f"rank {sel[-1][3]:.0f}/{int(ns[-1])}")
            if text:
                x_end, y_end = ns[pos][-1], err[pos][-1]
                # stagger labels whose anchors are close (0.06 decades) to earlier ones
                close = sum(1 for xe, ye in placed if xe == x_end
                            and abs(math.log10(ye / y_end)) < 0.06)
                placed.append((x_end, y_end))
                ax.annotate(", ".join(text), (x_end, y_end), fontsize=6,
                            xytext=(5, -9 * close), textcoords="offset points",
                            color=f"C{k}", va="center")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # no crowded 2x10^2, 3x10^2, ...
        all_n = sorted({r["n"] for r in result["means"] if r["dimension"] == d})
        if all_n:
            ax.set_xlim(all_n[0] / 1.4, all_n[-1] * 6)  # room for the labels at the right
        ax.set_xlabel("training points n")
        ax.set_ylabel("excess error over Bayes (mean +- standard error)")
        ax.set_title(f"d = {d}: dotted lines are the log-log fits", fontsize=9)
        ax.grid(which="both", alpha=0.25)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=2,
               fontsize=7, frameon=False)
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------
# Section 3: regression error grows with depth, classification accuracy does not
# ---------------------------------------------------------------------------------------


def _smooth_target(X: np.ndarray) -> np.ndarray:
    """A smooth function on the sphere (used as a regression target in section 3)."""
    d = X.shape[1]
    u = np.arange(1, d + 1, dtype=float)
    u /= np.linalg.norm(u)
    return np.sin(4 * (X @ u)) + X[:, 0] * X[:, -1]


#: Ridges of section 3. A smooth dual gives a numerically singular Gram matrix at small depth
#: (a polynomial dual of degree p at depth L is a polynomial of degree p^L in xi: on S^2 its
#: Gram matrix has rank <= (p^L + 1)^2), so exact interpolation (ridge 0, a pseudo-inverse
#: that drops eigenvalues below n eps max) is noise-dominated there; 1e-6 (relative to the
#: unit diagonal) is the headline, 1e-3 shows the trend is not an artefact of the solver.
DEPTH_RIDGES = (0.0, 1e-6, 1e-3)
DEPTH_MAIN_RIDGE = 1e-6


def _spectral_solves(K: np.ndarray, Y: np.ndarray, ridges: Sequence[float]) -> list[np.ndarray]:
    """(K + ridge I)^-1 Y for each ridge from one eigendecomposition of the symmetric K.

    ridge 0 is the minimum-norm least-squares solution: eigenvalues below
    ``n * eps * max|w|`` are dropped (numerically zero).
    """
    from scipy import linalg

    w, V = linalg.eigh(K, check_finite=True)
    VtY = V.T @ Y
    cut = K.shape[0] * np.finfo(float).eps * np.max(np.abs(w))
    out = []
    for ridge in ridges:
        if ridge > 0:
            inv = 1.0 / (np.maximum(w, 0.0) + ridge)
        else:
            keep = w > cut
            inv = np.where(keep, 1.0 / np.where(keep, w, 1.0), 0.0)
        out.append(V @ (inv[:, None] * VtY))
    return out


def _interpolate(act: Any, depth: Any, Xtr, Ytr, Xte, ridges: Sequence[float]):
    """Kernel regression with the normalized NTK of the given depth, for several ridges.

    Returns one pair per ridge: (outputs f(X_test) at the network's own scale,
    sign-preserving outputs with each test row of k(x) rescaled by its largest entry).
    The rescaling keeps the sign of f when f itself underflows (huge depths).
    """
    from .kernels import Kernel

    kern = Kernel(act, "ntk", depth)
    sK, lK = kern(Xtr, log=True)
    K = sK * np.exp(lK)
    sk, lk = kern(Xte, Xtr, log=True)
    with np.errstate(invalid="ignore"):
        top = np.max(np.where(sk != 0, lk, -np.inf), axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    k = sk * np.exp(lk)
    k_scaled = sk * np.exp(lk - top)
    return [(k @ c, k_scaled @ c) for c in _spectral_solves(K, Ytr, ridges)]


def section_depth(sizes: Sizes, seed: int, progress: bool, log: Callable) -> dict:
    from .data import paper_tasks

    d = sizes.regression_dimension
    task = paper_tasks(prior=0.4)[d]
    act = _designed(d - 1)
    act_name = f"designed (dimension {d - 1})"
    rows: list[dict[str, Any]] = []
    plan = [(s, L) for s in range(sizes.regression_seeds) for L in sizes.regression_depths]
    data = {}
    for s in range(sizes.regression_seeds):
        Xtr, ytr = task.sample(sizes.regression_n_train, _seed(seed, 200, s, 1))
        Xte, yte = task.sample(sizes.regression_n_test, _seed(seed, 200, s, 2))
        noise = _seed(seed, 200, s, 3).normal(scale=0.1, size=Xtr.shape[0])
        data[s] = (Xtr, ytr, Xte, yte, _smooth_target(Xtr) + noise)
    for s, L in _progress(plan, total=len(plan), desc="depth", enabled=progress):
        Xtr, ytr, Xte, yte, gtr = data[s]
        t0 = time.perf_counter()
        Y = np.column_stack([ytr.astype(float), gtr])
        fits = _interpolate(act, L, Xtr, Y, Xte, DEPTH_RIDGES)
        seconds = time.perf_counter() - t0
        reg_fn = 2 * task.posterior(Xte) - 1
        g = _smooth_target(Xte)
        for ridge, (f, f_sign) in zip(DEPTH_RIDGES, fits, strict=True):
            pred = np.where(f_sign[:, 0] >= 0, 1, -1)
            rows.append(dict(seed=s, depth=L, ridge=ridge, activation=act_name,
                             mse_posterior=float(np.mean((f[:, 0] - reg_fn) ** 2)),
                             mse_smooth=float(np.mean((f[:, 1] - g) ** 2)),
                             accuracy=float(np.mean(pred == yte)),
                             excess_error=_excess_error(task, Xte, pred)[0],
                             max_abs_output=float(np.max(np.abs(f[:, 0]))),
                             seconds=seconds))
    limit_rows = []
    for s in range(sizes.regression_seeds):
        Xtr, ytr, Xte, yte, _ = data[s]
        row = dict(seed=s, bayes_accuracy=task.bayes_accuracy(Xte, yte),
                   mse_posterior_zero_output=float(np.mean((2 * task.posterior(Xte) - 1) ** 2)),
                   mse_smooth_zero_output=float(np.mean(_smooth_target(Xte) ** 2)))
        try:
            pred, _ = _timed_fit_predict(_network(act, math.inf), Xtr, ytr, Xte)
            row.update(accuracy=float(np.mean(pred == yte)),
                       excess_error=_excess_error(task, Xte, pred)[0])
        except MissingComponent as exc:
            row["error"] = f"skipped: {exc}"
        limit_rows.append(row)
    means = []
    for ridge in DEPTH_RIDGES:
        for L in sizes.regression_depths:
            sel = [r for r in rows if r["depth"] == L and r["ridge"] == ridge]
            means.append(dict(depth=L, ridge=ridge, **{k: float(np.mean([r[k] for r in sel]))
                                                      for k in ("mse_posterior", "mse_smooth",
                                                                "accuracy", "excess_error",
                                                                "max_abs_output")}))
    return dict(dimension=d, activation=act_name, ridges=list(DEPTH_RIDGES),
                main_ridge=DEPTH_MAIN_RIDGE, rows=rows, means=means, limit=limit_rows)


def _report_depth(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    _write_csv(out / "depth_runs.csv", result["rows"])
    _write_csv(out / "depth.csv", result["means"])
    _write_json(out / "depth.json", result)
    headers = ["depth", "ridge", "MSE vs 2eta-1", "MSE vs g", "accuracy", "excess error",
               "max |f|"]
    order = [result["main_ridge"]] + [r for r in result["ridges"] if r != result["main_ridge"]]
    rows = [[m["depth"], m["ridge"], m["mse_posterior"], m["mse_smooth"], m["accuracy"],
             m["excess_error"], m["max_abs_output"]]
            for ridge in order for m in result["means"] if m["ridge"] == ridge]
    title = (f"[3] Depth: NTK regression with the {result['activation']} activation, "
             f"d = {result['dimension']}, n_train = {sizes.regression_n_train}, "
             f"{sizes.regression_seeds} seeds. One fit per depth and ridge on two targets: "
             "labels +-1 (MSE against the regression function 2 eta - 1, accuracy of the sign) "
             "and a smooth g plus N(0, 0.1^2) noise (MSE against g).")
    log("\n" + title)
    log(_table(headers, rows))
    md = ["## 3. Regression vs classification as depth grows", "", title[4:], "",
          _markdown(headers, rows), ""]
    lim = [r for r in result["limit"] if "accuracy" in r]
    zero = result["limit"]
    line = ("The output of the trained network tends to 0 off the training points as the "
            "depth grows, so the MSEs tend to those of the zero function: "
            f"{np.mean([r['mse_posterior_zero_output'] for r in zero]):.4f} (2 eta - 1) and "
            f"{np.mean([r['mse_smooth_zero_output'] for r in zero]):.4f} (g); Bayes accuracy "
            f"{np.mean([r['bayes_accuracy'] for r in zero]):.4f}.")
    if lim:
        line += (" Depth infinity (the limit rule, no solve): accuracy "
                 f"{np.mean([r['accuracy'] for r in lim]):.4f}.")
    log("  " + line)
    md.append(line)
    files = ["depth.csv", "depth_runs.csv", "depth.json"]
    try:
        _plot_depth(result, out / "depth.png")
        files.append("depth.png")
        md += ["", "![depth: regression error and accuracy vs depth](depth.png)"]
    except MissingComponent as exc:
        log(f"  no plot: {exc}")
    result["markdown"] = "\n".join(md)
    return files


def _plot_depth(result: dict, path: Path) -> None:
    fig, (ax, ax2) = _figure(ncols=2, width=5.6, height=4.4)
    main = result["main_ridge"]
    zero = result["limit"]
    for ridge in result["ridges"]:
        m = [r for r in result["means"] if r["ridge"] == ridge]
        L = np.array([r["depth"] for r in m], dtype=float)
        style = (dict(lw=2.0, alpha=1.0, ls="-") if ridge == main
                 else dict(lw=0.9, alpha=0.6, ls=":" if ridge == 0 else "--", markersize=4))
        tag = f"ridge {ridge:g}"
        ax.loglog(L, [r["mse_posterior"] for r in m], marker="o", color="C3",
                  label=f"MSE vs 2 eta - 1, {tag}", **style)
        ax.loglog(L, [r["mse_smooth"] for r in m], marker="s", color="C1",
                  label=f"MSE vs smooth g, {tag}", **style)
        ax2.semilogx(L, [r["accuracy"] for r in m], marker="^", color="C0",
                     label=f"accuracy of sign f, {tag}", **style)
    ax.axhline(np.mean([r["mse_posterior_zero_output"] for r in zero]), color="0.5", ls="-.",
               lw=0.8, label="zero output (2 eta - 1)")
    ax.axhline(np.mean([r["mse_smooth_zero_output"] for r in zero]), color="0.7", ls="-.",
               lw=0.8, label="zero output (g)")
    ax.set_xlabel("depth L")
    ax.set_ylabel("test mean squared error")
    ax.set_title("regression: test MSE vs depth")
    ax.legend(fontsize=6)
    ax2.axhline(np.mean([r["bayes_accuracy"] for r in zero]), color="k", ls=":",
                label="Bayes")
    lim = [r for r in result["limit"] if "accuracy" in r]
    if lim:
        ax2.axhline(np.mean([r["accuracy"] for r in lim]), color="C2", ls="--",
                    label="depth-inf limit rule")
    ax2.set_xlabel("depth L")
    ax2.set_ylabel("test accuracy")
    ax2.set_title("classification: test accuracy of sign f vs depth")
    ax2.legend(fontsize=6)
    fig.suptitle(f"{result['activation']} activation, d = {result['dimension']}")
    fig.savefig(path, dpi=120)


# ---------------------------------------------------------------------------------------
# Section 4: the taxonomy phase diagram
# ---------------------------------------------------------------------------------------

_PHASE_DIAGRAM_NAMES = ("plot_taxonomy", "taxonomy_phase_diagram", "phase_diagram",
                        "plot_phase_diagram", "taxonomy_plot")


def section_taxonomy(out: Path, quick: bool, log: Callable) -> dict:
    import importlib
    import inspect

    try:
        plots = importlib.import_module("infdepth.plots")
    except ImportError as exc:
        raise MissingComponent(f"infdepth.plots is not available ({exc})") from None
    fn = next((getattr(plots, n) for n in _PHASE_DIAGRAM_NAMES if hasattr(plots, n)), None)
    if fn is None:
        raise MissingComponent("infdepth.plots has no phase-diagram function "
                               f"(looked for {', '.join(_PHASE_DIAGRAM_NAMES)})")
    path = out / "taxonomy.png"
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {}
    if quick:
        for name in ("resolution", "grid", "n", "size"):
            if name in params and isinstance(params[name].default, int):
                kwargs[name] = min(params[name].default, 121)
                break
    first = next(iter(params), None)
    if first is not None and first in ("path", "output", "filename", "fname", "out"):
        res = fn(path, **kwargs)
    elif "path" in params:
        res = fn(path=path, **kwargs)
    elif "output" in params:
        res = fn(output=path, **kwargs)
    else:
        res = fn(**kwargs)
        if hasattr(res, "savefig"):
            res.savefig(path, dpi=120)
    if not path.exists() and isinstance(res, (str, Path)) and Path(res).exists():
        path = Path(res)
    if not path.exists():
        raise MissingComponent(f"{fn.__module__}.{fn.__name__} did not write a PNG")
    log(f"\n[4] Taxonomy phase diagram written to {path}")
    return dict(plot=str(path.name), function=f"{fn.__module__}.{fn.__name__}")


# ---------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------


def prepare_output_dir(output_dir: str | os.PathLike) -> Path:
    """Create the output folder, or raise a one-line ValueError saying why it cannot be."""
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {str(out)!r} is an existing file, not a folder; choose "
                         "another --output")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the output folder {str(out)!r}: "
                         f"{exc.strerror or exc}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"the output folder {str(out)!r} is not writable")
    return out


def run(
    output_dir: str | os.PathLike = "infdepth-results",
    quick: bool = False,
    seed: int = 0,
    progress: bool = True,
    *,
    sizes: Sizes | None = None,
    scale: float = 1.0,
    sections: Sequence[str] = ("synthetic", "consistency", "depth", "taxonomy"),
    verbose: bool = True,
) -> dict:
    """Run the reproduction; write tables, CSV/JSON and PNGs to ``output_dir``.

    Parameters
    ----------
    output_dir : path
        Folder for the results (created). Files: ``summary.json`` (every number),
        ``summary.md``, and per section ``*.csv``, ``*.json``, ``*.png``.
    quick : bool
        The :data:`QUICK` preset (a few minutes on 2 cores) instead of :data:`FULL`.
    seed : int
        Seed of every sample (data sets are drawn from ``numpy.random.default_rng``
        seeded with ``[seed, ...]``).
    progress : bool
        Show tqdm progress bars (on stderr).
    sizes : Sizes, optional
        Explicit sizes (overrides ``quick`` and ``scale``).
    scale : float
        Multiply every sample size of the preset by this factor (tests use ~0.1).
    sections : sequence of str
        Any of "synthetic", "consistency", "depth", "taxonomy".
    verbose : bool
        Print the tables.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    known = ("synthetic", "consistency", "depth", "taxonomy")
    bad = [s for s in sections if s not in known]
    if bad:
        raise ValueError(f"unknown sections {bad}; choose from {known}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if sizes is None:
        sizes = sizes_for(quick, scale)
    out = prepare_output_dir(output_dir)

    def log(msg: str = "") -> None:
        if verbose:
            print(msg, flush=True)

    started = time.perf_counter()
    mode = "quick" if quick else "full"
    log(f"infdepth reproduce ({mode} run, seed {seed}, sections: {', '.join(sections)}) -> "
        f"{out.resolve()}")
    # No time estimate: a formula over the sizes was off by 3x on a loaded machine. Each
    # section prints its measured time instead (and summary.json records it).
    if not quick and sizes == FULL and set(sections) & {"synthetic", "consistency", "depth"}:
        log(f"The full run uses the paper's sizes (10,000 training and 10,000 test points; "
            f"consistency up to n = {max(sizes.consistency_ns):,} for the rules that need no "
            f"solve, {sizes.consistency_seeds} seeds): hours on 2 CPU cores. Use --quick for "
            "a run of a few minutes.")

    summary: dict[str, Any] = dict(
        meta=dict(mode=mode, seed=seed, sizes=asdict(sizes), sections=list(sections),
                  python=platform.python_version(), platform=platform.platform(),
                  cpu_count=os.cpu_count(), versions=_versions(),
                  started=time.strftime("%Y-%m-%d %H:%M:%S")),
        seconds={}, files=[],
    )
    markdown = [f"# infdepth reproduce ({mode} run, seed {seed})", "",
                "Radhakrishnan, Belkin, Uhler, *Wide and deep neural networks achieve "
                "consistency for classification* (arXiv 2204.14126).", ""]
    steps: list[tuple[str, Callable[[], dict], Callable[[dict], list[str]] | None]] = [
        ("synthetic", lambda: section_synthetic(sizes, seed, progress, log),
         lambda r: _report_synthetic(r, sizes, out, log)),
        ("consistency", lambda: section_consistency(sizes, seed, progress, log),
         lambda r: _report_consistency(r, sizes, out, log)),
        ("depth", lambda: section_depth(sizes, seed, progress, log),
         lambda r: _report_depth(r, sizes, out, log)),
        ("taxonomy", lambda: section_taxonomy(out, quick, log), None),
    ]
    for name, compute, report in steps:
        if name not in sections:
            continue
        t0 = time.perf_counter()
        try:
            result = compute()
            if report is not None:
                summary["files"] += report(result)
            elif "plot" in result:
                summary["files"].append(result["plot"])
        except MissingComponent as exc:
            result = dict(skipped=str(exc))
            log(f"\n[{name}] skipped: {exc}")
        except Exception as exc:  # report, keep the other sections' results
            import traceback

            result = dict(error=f"{type(exc).__name__}: {exc}",
                          traceback=traceback.format_exc(limit=-4))
            log(f"\n[{name}] FAILED: {result['error']}")
        summary["seconds"][name] = time.perf_counter() - t0
        log(f"  [{name}: {summary['seconds'][name]:.1f} s]")
        md = result.pop("markdown", None)
        if md:
            markdown += [md, ""]
        elif "skipped" in result:
            markdown += [f"## {name}", "", f"Skipped: {result['skipped']}", ""]
        elif "error" in result:
            markdown += [f"## {name}", "", f"Failed: {result['error']}", ""]
        elif name == "taxonomy":
            markdown += ["## 4. Taxonomy phase diagram", "",
                         f"![taxonomy]({result['plot']}) (from `{result['function']}`)", ""]
        summary[name] = result
        # write what we have after every section (a long run leaves partial results)
        _write_json(out / "summary.json", summary)

    total = time.perf_counter() - started
    summary["seconds"]["total"] = total
    summary["headline"] = _headline(summary)
    markdown[4:4] = _headline_markdown(summary["headline"]) + [""]
    markdown.append(f"Total time: {total:.1f} s ({os.cpu_count()} CPUs visible).")
    summary["files"] += ["summary.json", "summary.md"]
    _write_json(out / "summary.json", summary)
    (out / "summary.md").write_text("\n".join(markdown) + "\n")
    log(f"\nDone in {total:.1f} s. Results: {out.resolve()}")
    return json.loads(json.dumps(_clean(summary), default=_json_default))


def _headline(summary: dict) -> dict:
    head: dict[str, Any] = {}
    syn = summary.get("synthetic", {})
    if "headline" in syn:
        head["bayes_vs_designed"] = syn["headline"]
    cons = summary.get("consistency", {})
    if "slopes" in cons:
        head["consistency_slopes"] = cons["slopes"]
        head["consistency_slope_errors"] = cons.get("slope_errors", {})
    return head


def _headline_markdown(head: dict) -> list[str]:
    md: list[str] = []
    if "bayes_vs_designed" in head:
        rows = [[d, v["n_train"], v["bayes_accuracy"], v["designed_depth_inf_accuracy"],
                 v["bayes_accuracy"] - v["designed_depth_inf_accuracy"],
                 v["designed_depth_inf_excess_error"]]
                for d, v in head["bayes_vs_designed"].items()]
        md += ["**Headline: Bayes vs the designed activation at depth infinity**", "",
               _markdown(["d", "n_train", "Bayes acc", "designed depth-inf acc", "gap",
                          "excess error"], rows), ""]
    if "consistency_slopes" in head:
        errs = head.get("consistency_slope_errors", {})
        rows = [[d, m, s, errs.get(d, {}).get(m, math.nan)]
                for d, per in head["consistency_slopes"].items() for m, s in per.items()]
        md += ["**Consistency slopes** (log excess error vs log n; standard error of the "
               "per-seed slopes)", "",
               _markdown(["d", "method", "slope", "s.e."], rows, digits=3), ""]
    return md


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("infdepth", "numpy", "scipy", "scikit-learn", "matplotlib"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ---------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``reproduce`` options to an argparse parser (or subparser)."""
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: finishes in a few minutes on 2 CPU cores")
    parser.add_argument("--output", "-o", default="infdepth-results", metavar="DIR",
                        help="output folder (default: ./infdepth-results)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every sample size by this factor (default 1)")
    parser.add_argument("--sections", nargs="+", metavar="SECTION",
                        choices=("synthetic", "consistency", "depth", "taxonomy"),
                        default=["synthetic", "consistency", "depth", "taxonomy"],
                        help="sections to run (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_from_args)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Run from parsed arguments (see :func:`add_arguments`); returns the exit status."""
    summary = run(args.output, quick=args.quick, seed=args.seed,
                  progress=not args.no_progress, scale=args.scale, sections=args.sections)
    failed = [name for name in args.sections if "error" in summary.get(name, {})]
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infdepth.reproduce [--quick] [--output DIR] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="infdepth reproduce",
        description="Reproduce the paper's experiments (Radhakrishnan, Belkin, Uhler 2022) "
        "and write tables, CSV/JSON and plots.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, OSError) as exc:  # one line, as the infdepth command prints it
        print(f"infdepth reproduce: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
