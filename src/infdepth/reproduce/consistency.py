"""Section 2: excess error over the Bayes classifier against the training size."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
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
from .config import Sizes
from .report import (
    excess_error,
    fmt,
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
from .synthetic import RELATIVE_RIDGE, RelativeRidge


def _consistency_methods(d: int, sizes: Sizes):
    from sklearn.neighbors import KNeighborsClassifier

    L = sizes.consistency_relu_depth
    return [
        (f"designed (dimension {d - 1}), depth inf", None,
         lambda: network_classifier(designed_activation_for(d - 1), math.inf)),
        (f"Hilbert estimate (alpha={d - 1})", None, lambda: hilbert_classifier(float(d - 1))),
        ("erf, depth inf", None, lambda: network_classifier(cached_activation("erf"), math.inf)),
        # the fourth regime (dual'(1) < 1): psi interpolation, a dense solve
        ("softplus, depth inf (psi_interpolation)", sizes.consistency_solve_cap,
         lambda: network_classifier(cached_activation("softplus"), math.inf)),
        (f"softplus, depth inf (psi_interpolation), ridge {RELATIVE_RIDGE:g} rel.",
         sizes.consistency_solve_cap,
         lambda: RelativeRidge(
             lambda: network_classifier(cached_activation("softplus"), math.inf))),
        (f"relu, depth {L}", sizes.consistency_solve_cap,
         lambda: network_classifier(cached_activation("relu"), L)),
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
    from ..data import paper_tasks

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
    for d, s, n, method, factory in progress_bar(plan, total=len(plan), desc="consistency",
                                              enabled=progress):
        task = tasks[d]
        if (d, s) not in cache:
            n_max = max(sizes.consistency_ns)
            cache.clear()
            cache[(d, s)] = (*task.sample(n_max, rng_for(seed, 100 + d, s, 1)),
                             *task.sample(sizes.consistency_n_test, rng_for(seed, 100 + d, s, 2)))
        Xtr, ytr, Xte, yte = cache[(d, s)]
        if method in errors:
            continue
        try:
            model = factory()
            pred, seconds = timed_fit_predict(model, Xtr[:n], ytr[:n], Xte)
        except MissingComponent as exc:
            errors[method] = f"skipped: {exc}"
            continue
        except Exception as exc:
            errors[method] = f"{type(exc).__name__}: {exc}"
            log(f"  [consistency d={d}] {method} failed at n={n}: {errors[method]}")
            continue
        excess, _ = excess_error(task, Xte, pred)
        runs.append(dict(dimension=d, seed=s, n=n, method=method, excess_error=excess,
                         test_error=float(np.mean(pred != yte)),
                         bayes_test_error=float(np.mean(task.bayes_predict(Xte) != yte)),
                         seconds=seconds, **solver_info(model, n)))
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
        return fmt(mean)
    return f"{fmt(mean)} +- {se:.2g}"


def report_consistency(result: dict, sizes: Sizes, out: Path, log: Callable) -> list[str]:
    write_csv(out / "consistency_runs.csv", result["runs"])
    write_csv(out / "consistency.csv", result["means"])
    write_json(out / "consistency.json", result)
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
        log(text_table(headers, rows))
        md += [f"**d = {d}**", "", markdown_table(headers, rows), ""]
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
    fig, axes = new_figure(ncols=len(dims), width=5.6, height=5.6)
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
