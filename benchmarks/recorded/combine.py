"""Combine a new run of some methods with the recorded per-set means of the others.

The 25-set table of benchmarks/README.md was run over several sessions; the per-fold
results of its baselines were lost with a machine, and only their per-set means (to
0.01) are kept, in ``real_data_25_sets_per_set_means.csv`` (its "infdepth CV (LOO)"
column is the exhaustive search of 2026-12-03, the default then). This script puts the
per-set means of a new ``results.csv`` (``benchmarks/real_data.py --output DIR``) beside
them, and prints the table, mean rank, wins, the Friedman test and the Holm-corrected
Wilcoxon p-values through real_data.py's own ``summarize`` and ``statistics``::

    python benchmarks/recorded/combine.py benchmarks/recorded/cv_loo_2026-12-04/results.csv

New per-set means are rounded to 0.01 points, as the recorded ones are, so that ties
are ties. Methods in the new run replace recorded ones of the same name.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from real_data import format_table, read_results, statistics, summarize  # noqa: E402

RECORDED = HERE / "real_data_25_sets_per_set_means.csv"


def combined(new: Path) -> tuple[list[dict], list[str]]:
    """Rows for :func:`summarize`: one per (data set, method), accuracy as a fraction."""
    means: dict[tuple[str, str], float] = {}
    with open(RECORDED, newline="") as f:
        for row in csv.DictReader(f):
            means[(row["dataset"], row["method"])] = float(row["accuracy_percent"])
    fresh = read_results(new)
    fresh_methods = list(dict.fromkeys(r["method"] for r in fresh))
    means = {k: v for k, v in means.items() if k[1] not in fresh_methods}
    for s, per_method in summarize(fresh, fresh_methods)["accuracy"].items():
        means.update({(s, m): round(100 * v, 2) for m, v in per_method.items()})
    methods = fresh_methods + [m for m in dict.fromkeys(m for _, m in means)
                               if m not in fresh_methods]
    rows = [dict(dataset=s, fold=0, method=m, accuracy=v / 100) for (s, m), v in means.items()]
    return rows, methods


def main(argv: list[str]) -> int:
    rows, methods = combined(Path(argv[0]))
    summary = summarize(rows, methods)
    print(format_table(summary, methods, markdown=True))
    stats = statistics(summary, ours=methods[0])
    print(f"\nFriedman chi2 = {stats['friedman_statistic']:.2f}, p = {stats['friedman_p']:.2g}")
    for m, p in sorted(stats["wilcoxon_holm_p"].items(), key=lambda kv: kv[1]):
        print(f"Wilcoxon {methods[0]} vs {m}: Holm p = {p:.3g} "
              f"(raw {stats['wilcoxon_p'][m]:.3g})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
