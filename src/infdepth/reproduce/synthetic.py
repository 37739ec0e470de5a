"""Section 1: the paper's synthetic experiment (Dirichlet classes on the sphere)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .components import (
    MissingComponent,
    cached_activation,
    designed_activation_for,
    hilbert_classifier,
    network_classifier,
)
from .config import SINE_FAMILY, Sizes
from .report import (
    depth_label,
    excess_error,
    markdown_table,
    new_figure,
    progress_bar,
    rng_for,
    solver_info,
    text_table,
    timed_fit_predict,
    write_csv,
    write_json,
)

RELATIVE_RIDGE = 1e-3


class RelativeRidge:
    """A complement-coordinate or psi network with an explicit ridge: the Gram system
    J - t E is solved as J - t (E - rho I), i.e. with ridge rho * t where
    t = max(1 - k) (for the psi rule, t -> 0: [-Psi + rho max(Psi) I, 1; 1^T, 0])."""

    def __init__(self, make: Callable[[], Any], rho: float = RELATIVE_RIDGE):
        self.make, self.rho = make, rho

    def fit(self, X, y):
        from ..solvers.dense import complement_solve as _complement_solve

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
        (f"Hilbert estimate (alpha={d - 1})", "-", math.inf,
         lambda: hilbert_classifier(float(d - 1))),
    ]
    acts: list[tuple[str, Callable[[], Any]]] = [
        ("relu", lambda: cached_activation("relu")),
        ("erf", lambda: cached_activation("erf")),
        # the two regimes outside the singular class with a non-trivial limit: GELU's
        # interior fixed point (majority vote) and softplus's dual'(1) < 1 (psi_interpolation)
        ("gelu", lambda: cached_activation("gelu")),
        ("softplus", lambda: cached_activation("softplus")),
    ]
    acts += [(f"sine a={a:g}", lambda a=a: cached_activation("sine_family", a=a))
             for a in SINE_FAMILY]
    acts.append((f"designed (dimension {d - 1})", lambda: designed_activation_for(d - 1)))
    for name, make_act in acts:
        for depth in (*sizes.finite_depths, math.inf):
            out.append((f"NTK {name}, depth {depth_label(depth)}", name, depth,
                        lambda make_act=make_act, depth=depth:
                        network_classifier(make_act(), depth)))
            if name == "softplus":  # few resolvable directions: the same with a ridge
                out.append((f"NTK {name}, depth {depth_label(depth)}, ridge "
                            f"{RELATIVE_RIDGE:g} rel.", name, depth,
                            lambda make_act=make_act, depth=depth: RelativeRidge(
                                lambda: network_classifier(make_act(), depth))))
    return out


def section_synthetic(sizes: Sizes, seed: int, progress: bool, log: Callable) -> dict:
    from ..data import paper_tasks

    tasks = paper_tasks(prior=0.4)
    rows: list[dict[str, Any]] = []
    plan = [(d, m) for d in sizes.dimensions for m in _synthetic_methods(d, sizes)]
    data = {}
    for d in sizes.dimensions:
        task = tasks[d]
        Xtr, ytr = task.sample(sizes.n_train, rng_for(seed, d, 1))
        Xte, yte = task.sample(sizes.n_test, rng_for(seed, d, 2))
        data[d] = (Xtr, ytr, Xte, yte)
        bayes_pred = task.bayes_predict(Xte)
        rows.append(dict(dimension=d, method="Bayes (exact)", activation="-", depth=None,
                         n_train=0, n_test=sizes.n_test,
                         accuracy=float(np.mean(bayes_pred == yte)), excess_error=0.0,
                         disagreement=0.0, seconds=0.0, error=None))
    n_fin = sizes.finite_n_train or sizes.n_train
    for d, (method, act_name, depth, factory) in progress_bar(
        plan, total=len(plan), desc="synthetic", enabled=progress
    ):
        task = tasks[d]
        Xtr, ytr, Xte, yte = data[d]
        n = n_fin if (depth is not None and depth != math.inf) else sizes.n_train
        row = dict(dimension=d, method=method, activation=act_name,
                   depth=depth_label(depth) if depth is not None else None,
                   n_train=n, n_test=sizes.n_test, accuracy=math.nan, excess_error=math.nan,
                   disagreement=math.nan, seconds=math.nan, error=None)
        try:
            model = factory()
            pred, seconds = timed_fit_predict(model, Xtr[:n], ytr[:n], Xte)
            excess, disagree = excess_error(task, Xte, pred)
            row.update(accuracy=float(np.mean(pred == yte)), excess_error=excess,
                       disagreement=disagree, seconds=seconds, **solver_info(model, n))
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


def report_synthetic(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    rows = result["rows"]
    write_csv(out / "synthetic.csv", rows)
    write_json(out / "synthetic.json", result)
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
    log(text_table(headers, table_rows))
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
          markdown_table(headers, table_rows), ""]
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
    fig, (ax,) = new_figure(width=10.5, height=max(5.0, 0.42 * len(methods) * max(1, len(dims))
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
