"""The ``infdepth reproduce`` command line: its options, and running from them.

Importing this module is cheap (argparse only), so ``infdepth --help`` starts without
scipy or scikit-learn; the experiments are imported when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

#: The sections of the job, in the order they run (here, so that the command line knows
#: them without importing the experiments).
SECTIONS = ("synthetic", "consistency", "depth", "taxonomy", "resnet")


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
                        choices=SECTIONS, default=list(SECTIONS),
                        help="sections to run (default: all)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run_from_args)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Run from parsed arguments (see :func:`add_arguments`); returns the exit status."""
    from .runner import run  # the experiments load scikit-learn: only when they run

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
