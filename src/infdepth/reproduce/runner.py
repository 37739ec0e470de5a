"""The job: run every section, write the report, the command-line entry points."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from .command import SECTIONS
from .components import MissingComponent
from .config import FULL, Sizes, sizes_for
from .consistency import report_consistency, section_consistency
from .depth import report_depth, section_depth
from .report import clean_for_json, json_default, markdown_table, write_json
from .resnet import report_resnet, section_resnet
from .synthetic import report_synthetic, section_synthetic
from .taxonomy import section_taxonomy


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
    sections: Sequence[str] = SECTIONS,
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
        Any of :data:`SECTIONS`.
    verbose : bool
        Print the tables.

    Returns
    -------
    dict
        The content of ``summary.json``.
    """
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        raise ValueError(f"unknown sections {bad}; choose from {SECTIONS}")
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
         lambda r: report_synthetic(r, sizes, out, log)),
        ("consistency", lambda: section_consistency(sizes, seed, progress, log),
         lambda r: report_consistency(r, sizes, out, log)),
        ("depth", lambda: section_depth(sizes, seed, progress, log),
         lambda r: report_depth(r, sizes, out, log)),
        ("taxonomy", lambda: section_taxonomy(out, quick, log), None),
        ("resnet", lambda: section_resnet(sizes, seed, progress, log),
         lambda r: report_resnet(r, sizes, out, log)),
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
        write_json(out / "summary.json", summary)

    total = time.perf_counter() - started
    summary["seconds"]["total"] = total
    summary["headline"] = _headline(summary)
    markdown[4:4] = _headline_markdown(summary["headline"]) + [""]
    markdown.append(f"Total time: {total:.1f} s ({os.cpu_count()} CPUs visible).")
    summary["files"] += ["summary.json", "summary.md"]
    write_json(out / "summary.json", summary)
    (out / "summary.md").write_text("\n".join(markdown) + "\n")
    log(f"\nDone in {total:.1f} s. Results: {out.resolve()}")
    return json.loads(json.dumps(clean_for_json(summary), default=json_default))


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
               markdown_table(["d", "n_train", "Bayes acc", "designed depth-inf acc", "gap",
                          "excess error"], rows), ""]
    if "consistency_slopes" in head:
        errs = head.get("consistency_slope_errors", {})
        rows = [[d, m, s, errs.get(d, {}).get(m, math.nan)]
                for d, per in head["consistency_slopes"].items() for m, s in per.items()]
        md += ["**Consistency slopes** (log excess error vs log n; standard error of the "
               "per-seed slopes)", "",
               markdown_table(["d", "method", "slope", "s.e."], rows, digits=3), ""]
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
