"""Section 5: residual networks against MLPs as depth grows, and the ResNet phase diagram.

Each network is the classifier of the infinitely wide network trained to interpolation
(NTK, ridge 0) at depths up to infinity: the MLP's depth-infinity rule (docs/theory.md
section 4) against the ResNet with branches scaled by 1/sqrt(L), whose infinitely deep
kernel is the depth-time ODE kernel (docs/theory.md section 8, docs/resnet.md). The MLP
degenerates with depth (ReLU: to the majority vote; erf: to a singular kernel rule), the
ResNet converges to a non-degenerate kernel, so its accuracy stops changing with depth.
Data: the paper's Dirichlet task (exact excess error) and real sets with a stratified
70/30 split; the same split for every network.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from ..data import load_dataset, paper_tasks
from ..estimators import InfiniteNetworkClassifier
from ..resnet_taxonomy import resnet_limit
from .components import MissingComponent, cached_activation
from .config import Sizes
from .report import (
    depth_label,
    excess_error,
    markdown_table,
    new_figure,
    progress_bar,
    rng_for,
    text_table,
    timed_fit_predict,
    write_csv,
    write_json,
)

#: Activations compared (one per MLP limit regime: parabolic / majority, and singular).
RESNET_ACTIVATIONS = ("relu", "erf")
#: Real data sets of the section (scikit-learn's bundled sets).
RESNET_REAL_SETS = ("wine", "breast_cancer")
#: Branch exponent of the ResNet: beta_L = L^-1/2, the non-degenerate scaling.
BRANCH_EXPONENT = 0.5
#: The taxonomy table: one activation per large-variance class (linear growth, bounded
#: with a mean, odd bounded, oscillating) at branch exponents below, at and above 1/2.
TAXONOMY_ACTIVATIONS = ("relu", "softplus", "sigmoid", "erf", "tanh", "sin")
TAXONOMY_EXPONENTS = (0.0, 0.25, 0.5, 0.75)


def resnet_taxonomy_rows() -> list[dict]:
    """Which classifier each infinitely deep ResNet is (docs/resnet.md §6)."""
    rows = []
    for act in TAXONOMY_ACTIVATIONS:
        for gamma in TAXONOMY_EXPONENTS:
            lim = resnet_limit(cached_activation(act), gamma)
            form = lim.large_variance
            rows.append(dict(
                activation=act, branch_exponent=gamma, kind=lim.kind, rule=lim.rule,
                degree=(None if form is None else
                        "oscillating" if form.degree is None else form.degree),
                limit_correlation=lim.point, exponent=lim.exponent))
    return rows


def _data_sets(sizes: Sizes, seed: int) -> list[tuple[str, Any, tuple]]:
    """(name, task or None, (X_train, y_train, X_test, y_test)) for every data set."""
    out = []
    tasks = paper_tasks()
    for d in sizes.resnet_dimensions:
        task = tasks[d]
        Xtr, ytr = task.sample(sizes.resnet_n_train, rng_for(seed, 5, d, 0))
        Xte, yte = task.sample(sizes.resnet_n_test, rng_for(seed, 5, d, 1))
        out.append((f"Dirichlet d={d}", task, (Xtr, ytr, Xte, yte)))
    for name in sizes.resnet_real_sets:
        X, y = load_dataset(name)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y,
                                              random_state=seed)
        out.append((name, None, (Xtr, ytr, Xte, yte)))
    return out


def section_resnet(sizes: Sizes, seed: int, progress: bool, log: Callable) -> dict:
    """Accuracy against depth for MLP and ResNet networks (NTK, interpolation)."""
    data = _data_sets(sizes, seed)
    runs = [(name, task, split, act, arch, depth)
            for name, task, split in data for act in RESNET_ACTIVATIONS
            for arch, depths in (("mlp", sizes.resnet_mlp_depths),
                                 ("resnet", sizes.resnet_depths))
            for depth in (*depths, math.inf)]
    rows = []
    for name, task, (Xtr, ytr, Xte, yte), act, arch, depth in progress_bar(
            runs, total=len(runs), desc="resnet", enabled=progress):
        on_sphere = task is not None  # the Dirichlet tasks already lie on the sphere
        model = InfiniteNetworkClassifier(cached_activation(act), kernel="ntk", depth=depth,
                                          architecture=arch, branch_exponent=BRANCH_EXPONENT,
                                          projection=None if on_sphere else "auto")
        pred, seconds = timed_fit_predict(model, Xtr, ytr, Xte)
        row = dict(data=name, activation=act, architecture=arch, depth=depth,
                   n_train=len(ytr), rule=model.rule_, accuracy=float(np.mean(pred == yte)),
                   seconds=seconds)
        if task is not None:
            row["bayes_accuracy"] = task.bayes_accuracy(Xte, yte)
            row["excess_error"] = excess_error(task, Xte, pred)[0]
        rows.append(row)
    return dict(rows=rows, taxonomy=resnet_taxonomy_rows(),
                activations=list(RESNET_ACTIVATIONS),
                branch_exponent=BRANCH_EXPONENT, data=[name for name, _, _ in data])


def report_resnet(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    write_csv(out / "resnet.csv", result["rows"])
    write_json(out / "resnet.json", result)
    headers = ["data", "activation", "architecture", "depth", "rule", "accuracy",
               "excess error"]
    rows = [[r["data"], r["activation"], r["architecture"], depth_label(r["depth"]), r["rule"],
             r["accuracy"], r.get("excess_error", math.nan)] for r in result["rows"]]
    title = ("[5] Residual networks (branches scaled by L^-1/2) against MLPs: NTK "
             "interpolation, accuracy on held-out points as the depth grows to infinity "
             "(MLP at infinity: its limit rule; ResNet: the depth-time ODE kernel).")
    log("\n" + title)
    log(text_table(headers, rows))
    md = ["## 5. Residual networks vs MLPs with depth", "", title[4:], "",
          markdown_table(headers, rows), ""]
    md.append(_summary_line(result["rows"]))
    log("  " + md[-1])
    tax_headers = ["activation", "branch exponent", "limit", "rule", "degree at infinity",
                   "rho*", "exponent"]
    tax = [[r["activation"], r["branch_exponent"], r["kind"], r["rule"],
            "-" if r["degree"] is None else r["degree"],
            "-" if r["limit_correlation"] is None else r["limit_correlation"],
            "-" if r["exponent"] is None else r["exponent"]]
           for r in result.get("taxonomy", [])]
    if tax:
        tax_title = ("[5b] Which classifier the infinitely deep ResNet is: by branch "
                     "exponent, and below 1/2 by phi at large variance (rho*: the NNGP's "
                     "limit correlation; exponent: rho_T - rho* ~ T^-exponent).")
        log("\n" + tax_title)
        log(text_table(tax_headers, tax))
        md += ["", tax_title[5:], "", markdown_table(tax_headers, tax), ""]
    files = ["resnet.csv", "resnet.json"]
    try:
        _plot_resnet(result, out / "resnet_depth.png")
        files.append("resnet_depth.png")
        md += ["", "![accuracy vs depth, MLP and ResNet](resnet_depth.png)"]
        from ..plots import plot_resnet_taxonomy

        plot_resnet_taxonomy(out / "resnet_taxonomy.png", depths=sizes.resnet_phase_depths)
        files.append("resnet_taxonomy.png")
        md += ["", "![ResNet phase diagram by branch exponent](resnet_taxonomy.png)"]
    except (MissingComponent, ImportError) as exc:
        log(f"  no plot: {exc}")
    result["markdown"] = "\n".join(md)
    return files


def _summary_line(rows: list[dict]) -> str:
    """How far each architecture's accuracy moves from its shallowest to its deepest net."""
    parts = []
    for arch in ("mlp", "resnet"):
        spans = []
        for key in sorted({(r["data"], r["activation"]) for r in rows}):
            sel = [r for r in rows if (r["data"], r["activation"]) == key
                   and r["architecture"] == arch]
            if sel:
                spans.append(abs(sel[-1]["accuracy"] - sel[0]["accuracy"]))
        if spans:
            shallowest = min(r["depth"] for r in rows if r["architecture"] == arch)
            parts.append(f"{arch}: mean |accuracy(depth inf) - accuracy(depth "
                         f"{depth_label(shallowest)})| = {np.mean(spans):.4f}")
    return "Change of accuracy from the shallowest network to depth infinity, " + "; ".join(
        parts) + "."


def _plot_resnet(result: dict, path: Path) -> None:
    names = result["data"]
    fig, axes = new_figure(ncols=len(names), width=4.2, height=3.8)
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=True):
        for i, act in enumerate(result["activations"]):
            for arch, style in (("mlp", "--"), ("resnet", "-")):
                sel = [r for r in result["rows"] if r["data"] == name
                       and r["activation"] == act and r["architecture"] == arch]
                finite = [r for r in sel if r["depth"] < math.inf]
                top = max(r["depth"] for r in finite)
                x = [r["depth"] if r["depth"] < math.inf else top * 10 for r in sel]
                ax.semilogx(x, [r["accuracy"] for r in sel], style, marker="o", color=f"C{i}",
                            label=f"{act} {arch}")
        ax.set_title(name)
        ax.set_xlabel("depth L (last point: L = inf)")
        ax.set_ylabel("test accuracy")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.savefig(path, dpi=120)
