"""Section 3: regression versus classification with depth."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .components import MissingComponent, designed_activation_for, network_classifier
from .config import Sizes
from .report import (
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
    from ..kernels import Kernel

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
    from ..data import paper_tasks

    d = sizes.regression_dimension
    task = paper_tasks(prior=0.4)[d]
    act = designed_activation_for(d - 1)
    act_name = f"designed (dimension {d - 1})"
    rows: list[dict[str, Any]] = []
    plan = [(s, L) for s in range(sizes.regression_seeds) for L in sizes.regression_depths]
    data = {}
    for s in range(sizes.regression_seeds):
        Xtr, ytr = task.sample(sizes.regression_n_train, rng_for(seed, 200, s, 1))
        Xte, yte = task.sample(sizes.regression_n_test, rng_for(seed, 200, s, 2))
        noise = rng_for(seed, 200, s, 3).normal(scale=0.1, size=Xtr.shape[0])
        data[s] = (Xtr, ytr, Xte, yte, _smooth_target(Xtr) + noise)
    for s, L in progress_bar(plan, total=len(plan), desc="depth", enabled=progress):
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
                             excess_error=excess_error(task, Xte, pred)[0],
                             max_abs_output=float(np.max(np.abs(f[:, 0]))),
                             seconds=seconds))
    limit_rows = []
    for s in range(sizes.regression_seeds):
        Xtr, ytr, Xte, yte, _ = data[s]
        row = dict(seed=s, bayes_accuracy=task.bayes_accuracy(Xte, yte),
                   mse_posterior_zero_output=float(np.mean((2 * task.posterior(Xte) - 1) ** 2)),
                   mse_smooth_zero_output=float(np.mean(_smooth_target(Xte) ** 2)))
        try:
            pred, _ = timed_fit_predict(network_classifier(act, math.inf), Xtr, ytr, Xte)
            row.update(accuracy=float(np.mean(pred == yte)),
                       excess_error=excess_error(task, Xte, pred)[0])
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


def report_depth(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    write_csv(out / "depth_runs.csv", result["rows"])
    write_csv(out / "depth.csv", result["means"])
    write_json(out / "depth.json", result)
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
    log(text_table(headers, rows))
    md = ["## 3. Regression vs classification as depth grows", "", title[4:], "",
          markdown_table(headers, rows), ""]
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
    fig, (ax, ax2) = new_figure(ncols=2, width=5.6, height=4.4)
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
