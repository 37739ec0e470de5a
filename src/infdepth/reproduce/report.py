"""Small utilities of the report: progress, text and markdown tables, JSON and CSV
writers, figures, seeds, exact excess errors."""

from __future__ import annotations

import csv
import json
import math
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .components import MissingComponent


def progress_bar(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled=True):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, dynamic_ncols=True,
                file=sys.stderr)


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
            return f"{value:.{digits - 1}e}"
        return f"{value:.{digits}f}"
    if value is None:
        return "-"
    return str(value)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    cells = [[fmt(v, digits) for v in row] for row in rows]
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


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    out = ["| " + " | ".join(_cell(h) for h in headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        out.append("| " + " | ".join(_cell(fmt(v, digits)) for v in row) + " |")
    return "\n".join(out)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def clean_for_json(obj: Any) -> Any:
    """Replace non-finite floats by None (strict JSON) and infinite depths by "inf"."""
    if isinstance(obj, dict):
        return {str(k): clean_for_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_for_json(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return None if math.isnan(v) else v
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(clean_for_json(obj), indent=2, default=json_default) + "\n")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
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


def new_figure(ncols: int = 1, width: float = 6.4, height: float = 4.4):
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


def depth_label(depth: Any) -> str:
    return "inf" if depth == math.inf else str(depth)


def rng_for(*parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) for p in parts])


def excess_error(task: Any, X: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(exact excess error estimate, fraction of test points where pred != Bayes)."""
    eta = task.posterior(X)
    differs = np.asarray(pred) != task.bayes_predict(X)
    return float(np.mean(np.abs(2 * eta - 1) * differs)), float(np.mean(differs))


def timed_fit_predict(model: Any, Xtr, ytr, Xte) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # an ill-conditioned Gram matrix is reported through the solver columns instead
        warnings.simplefilter("ignore")
        model.fit(Xtr, ytr)
        pred = np.asarray(model.predict(Xte))
    return pred, time.perf_counter() - t0


def solver_info(model: Any, n: int) -> dict[str, Any]:
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
