"""Command line interface: ``infdepth SUBCOMMAND ...``.

Subcommands::

    infdepth taxonomy ACTIVATION [--param k=v ...] [--no-oscillation] [--json]
    infdepth design (--dimension D | --alpha A) [--family F] [--degree K]
    infdepth plot taxonomy [--output FILE.png]
    infdepth reproduce [--quick] [--output DIR] [--sections ...] [--seed N]

ACTIVATION is a built-in name (``relu``, ``erf``, ``sine_family`` with ``--param a=2.676``,
...) or ``dual:c0,c1,c2,...`` for the activation with that polynomial dual.

Adding a subcommand: write ``_add_NAME(subparsers)`` that creates its parser and sets
``func=cmd_NAME`` with :meth:`argparse.ArgumentParser.set_defaults`, write
``cmd_NAME(args) -> int`` (print to stdout, return the exit status), and append
``_add_NAME`` to :data:`SUBCOMMANDS`. ``ValueError``, ``ImportError`` and ``OSError``
raised by a command are reported as one line ``infdepth: error: ...`` with exit status 2;
any other exception as one line ``infdepth: internal error: ...`` with exit status 1 (set
the environment variable ``INFDEPTH_TRACEBACK=1`` to see its traceback). Never a
traceback by default.

Start-up is fast: this module imports only the standard library at import time (every
subcommand imports what it needs when it runs), and ``import infdepth`` is lazy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

__all__ = ["main", "build_parser", "SUBCOMMANDS", "parse_activation", "parse_params"]


# --------------------------------------------------------------------------- helpers
def _number(text: str):
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_params(items: Sequence[str] | None) -> dict:
    """``["a=2.5", "degree=2"]`` -> ``{"a": 2.5, "degree": 2}`` (numbers where possible)."""
    params = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        params[key.strip()] = _number(value.strip())
    return params


def parse_activation(spec: str, params: dict | None = None):
    """An Activation from a built-in name (with params) or ``dual:c0,c1,...``."""
    from .activations import Activation, activation

    if spec.startswith("dual:"):
        if params:
            raise ValueError("--param does not apply to a dual:... activation")
        try:
            coefficients = [float(v) for v in spec[5:].split(",") if v.strip()]
        except ValueError:
            raise ValueError(
                f"bad dual coefficients in {spec!r}: expected dual:c0,c1,..."
            ) from None
        return Activation.from_dual_coefficients(coefficients)
    return activation(spec, **(params or {}))


def _value(x) -> str:
    if x is None:
        return "None"
    if isinstance(x, float):
        return f"{x:.12g}"
    return str(x)


# --------------------------------------------------------------------------- taxonomy
def _add_taxonomy(subparsers) -> None:
    p = subparsers.add_parser(
        "taxonomy",
        help="which classifier the infinitely deep network of an activation becomes",
        description="Print the infinite-depth limit record of an activation (docs/theory.md, "
        "section 4 'Infinite depth: the taxonomy'): kind, alpha, fixed point, c0, m, "
        "antipodal behaviour.",
    )
    p.add_argument("activation", help="built-in name, or dual:c0,c1,... for a polynomial dual")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="parameter of a built-in activation (repeatable), e.g. a=2.676")
    p.add_argument("--no-oscillation", action="store_true",
                   help="skip the engine measurement of P's oscillation (faster)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=cmd_taxonomy)


def cmd_taxonomy(args) -> int:
    from .taxonomy import limit

    act = parse_activation(args.activation, parse_params(args.param))
    record = limit(act, oscillation=not args.no_oscillation)
    if args.json:
        print(json.dumps(record.as_dict(), indent=2, default=str))
    else:
        print(record.format())
    return 0


# --------------------------------------------------------------------------- design
#: The families of :func:`infdepth.design.design_activation` (``design.FAMILIES``; repeated
#: here so that ``infdepth --help`` does not import scipy; a test keeps the two equal).
DESIGN_FAMILIES = ("polynomial", "odd_polynomial", "sine")


def _add_design(subparsers) -> None:
    p = subparsers.add_parser(
        "design",
        help="an activation whose infinitely deep network is the singular kernel "
        "classifier with a given exponent (Bayes optimal for --dimension D)",
        description="Design an activation (docs/theory.md, section 5 'Optimality and "
        "activation design') and verify it with the kernel engine.",
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--dimension", type=float,
                        help="dimension D of the data's support: alpha = D (Hilbert estimate)")
    target.add_argument("--alpha", type=float, help="singular exponent alpha > 0")
    p.add_argument("--family", default="polynomial", choices=DESIGN_FAMILIES)
    p.add_argument("--degree", type=int, default=None,
                   help="force the degree k of a polynomial family")
    p.set_defaults(func=cmd_design)


def cmd_design(args) -> int:
    from .design import design_activation, design_formula
    from .taxonomy import limit

    act = design_activation(alpha=args.alpha, dimension=args.dimension, family=args.family,
                            degree=args.degree)
    requested = args.alpha if args.alpha is not None else args.dimension
    record = limit(act)
    print(f"activation  {act.name}")
    print(f"family      {act.params['family']}")
    for line in design_formula(act):
        print(line)
    print(
        f"invariants  c0 = {_value(record.c0)}, m = {_value(record.m)}, "
        f"dual(-1) = {_value(record.dual_at_minus_one)}"
    )
    print(f"antipodal   {record.antipodal}")
    if record.alpha is None:  # pragma: no cover - a design is always singular
        print(f"verification: FAILED, limit() kind is {record.kind}")
        return 1
    line = (
        f"verification: limit() kind {record.kind}, alpha = {record.alpha:.15g} "
        f"(|alpha - requested| = {abs(record.alpha - requested):.2g})"
    )
    if record.measured_alpha is not None:
        line += (
            f"; engine: -2 x slope of log h vs log(1 - xi) over one log-period at "
            f"1 - xi = 1e-12: alpha = {record.measured_alpha:.15g} "
            f"(|diff| = {abs(record.measured_alpha - requested):.2g}); "
            f"P oscillation = {record.oscillation:.3g}"
        )
    print(line)
    return 0


# --------------------------------------------------------------------------- plot
def _add_plot(subparsers) -> None:
    p = subparsers.add_parser("plot", help="figures (needs matplotlib)")
    figures = p.add_subparsers(dest="figure", metavar="FIGURE", required=True)
    t = figures.add_parser("taxonomy", help="phase diagram of the infinite-depth classifiers")
    t.add_argument("--output", "-o", default="taxonomy.png", help="PNG file (taxonomy.png)")
    t.set_defaults(func=cmd_plot_taxonomy)


def check_output_file(path: str) -> None:
    """Raise ValueError (one line) unless ``path`` can be created as a file."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"--output {path!r} is a folder; give a file name such as "
                         f"{os.path.join(path, 'taxonomy.png')!r}")
    if not os.path.isdir(folder):
        raise ValueError(f"--output {path!r}: the folder {folder!r} does not exist "
                         "(create it first or choose another path)")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--output {path!r}: the folder {folder!r} is not writable")


def cmd_plot_taxonomy(args) -> int:
    check_output_file(args.output)
    from .plots import plot_taxonomy

    plot_taxonomy(args.output)
    print(f"wrote {args.output}")
    return 0


def _add_reproduce(subparsers) -> None:
    from .reproduce.command import add_arguments, run_from_args

    p = subparsers.add_parser(
        "reproduce",
        help="the paper's experiments and the evidence beyond them (tables, plots, CSV)",
    )
    add_arguments(p)
    p.set_defaults(func=run_from_args)


# --------------------------------------------------------------------------- main
#: Functions that register one subcommand each on the subparsers object.
SUBCOMMANDS: list[Callable] = [_add_taxonomy, _add_design, _add_plot, _add_reproduce]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of :data:`SUBCOMMANDS`."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="infdepth",
        description="Infinitely wide and infinitely deep neural networks as classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``infdepth`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, ImportError, OSError) as exc:
        print(f"infdepth: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infdepth: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("INFDEPTH_TRACEBACK"):
            raise
        print(f"infdepth: internal error: {type(exc).__name__}: {_one_line(exc)} (set "
              "INFDEPTH_TRACEBACK=1 for the traceback; please report it)", file=sys.stderr)
        return 1


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename!r}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

