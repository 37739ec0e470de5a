"""The documentation runs: docs/api.md as doctests, docs/cli.md's transcripts and options.

* Every ``>>>`` example of ``docs/api.md`` is executed (ELLIPSIS, NORMALIZE_WHITESPACE).
* Every ``$ infdepth ...`` transcript of ``docs/cli.md`` whose command is cheap
  (``taxonomy``, ``design``) is run through ``infdepth.cli.main`` and its output compared
  with the transcript (``...`` matches anything, as in doctests); ``plot`` and
  ``reproduce`` are only parsed (they write files and take minutes).
* Every option of every subcommand of the real parser is documented in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import doctest
import math
import re
import shlex
from pathlib import Path

import pytest

from infdepth import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def test_api_doctests():
    import infdepth.estimators

    limit = infdepth.estimators.FIT_MEMORY_LIMIT
    try:
        result = doctest.testfile(str(DOCS / "api.md"), module_relative=False,
                                  optionflags=FLAGS, report=True, raise_on_error=False)
    finally:
        infdepth.estimators.FIT_MEMORY_LIMIT = limit  # the page changes it
    assert result.attempted > 50
    assert result.failed == 0, f"{result.failed} doctest failures in docs/api.md (see stdout)"


def test_readme_doctests():
    readme = DOCS.parent / "README.md"
    result = doctest.testfile(str(readme), module_relative=False, optionflags=FLAGS,
                              report=True, raise_on_error=False)
    assert result.attempted > 10
    assert result.failed == 0, f"{result.failed} doctest failures in README.md (see stdout)"


def _transcripts():
    """(command, expected output) for every '$ infdepth ...' line of docs/cli.md."""
    text = (DOCS / "cli.md").read_text()
    found = []
    for block in re.findall(r"```text\n(.*?)```", text, flags=re.S):
        command, lines = None, []
        for line in block.splitlines() + ["$ end"]:
            if line.startswith("$ "):
                if command is not None:
                    found.append((command, "\n".join(lines)))
                command, lines = line[2:], []
            elif command is not None:
                lines.append(line)
    return found


TRANSCRIPTS = _transcripts()


def test_transcripts_were_found():
    commands = [c for c, _ in TRANSCRIPTS]
    assert any(c.startswith("infdepth design") for c in commands)
    assert sum(c.startswith("infdepth taxonomy") for c in commands) >= 3


@pytest.mark.parametrize("command, expected", TRANSCRIPTS, ids=[c for c, _ in TRANSCRIPTS])
def test_cli_transcript(command, expected, capsys):
    argv = shlex.split(command)[1:]
    if argv[0] in ("plot", "reproduce"):  # only check that the documented call parses
        args = cli.build_parser().parse_args(argv)
        assert callable(args.func)
        return
    status = cli.main(argv)
    captured = capsys.readouterr()
    got = captured.out + captured.err
    assert status == (2 if captured.err else 0)
    assert _same_output(expected, got), (
        f"docs/cli.md shows for `{command}`:\n{expected}\n\nbut it prints:\n{got}")


#: Printed numbers are compared to this relative tolerance (their last digits are
#: rounding, which differs between CPUs and BLAS builds), text exactly (doctest FLAGS).
TRANSCRIPT_RTOL = 1e-9
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _same_output(expected: str, got: str) -> bool:
    """doctest's comparison with every number replaced by a placeholder, and the numbers
    themselves equal to TRANSCRIPT_RTOL (relative) or 1e-12 (absolute)."""
    checker = doctest.OutputChecker()
    if checker.check_output(expected.strip() + "\n", got.strip() + "\n", FLAGS):
        return True
    want_numbers, got_numbers = _NUMBER.findall(expected), _NUMBER.findall(got)
    template = _NUMBER.sub("#", expected.strip()) + "\n"
    if not checker.check_output(template, _NUMBER.sub("#", got.strip()) + "\n", FLAGS):
        return False
    if len(want_numbers) != len(got_numbers):
        return False
    return all(math.isclose(float(a), float(b), rel_tol=TRANSCRIPT_RTOL, abs_tol=1e-12)
               for a, b in zip(want_numbers, got_numbers, strict=True))


def test_transcript_numbers_compare_with_a_tolerance():
    assert _same_output("alpha = 3.00000000000188 (ok)", "alpha = 3.00000000000184 (ok)")
    assert not _same_output("alpha = 3.0000 (ok)", "alpha = 3.0001 (ok)")
    assert not _same_output("alpha = 3.0 (ok)", "alpha = 3.0 (bad)")


def _subparsers(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,), sub
                yield from _subparsers(sub, prefix + (name,))


def test_every_option_is_documented():
    text = (DOCS / "cli.md").read_text()
    seen = 0
    for path, parser in _subparsers(cli.build_parser()):
        has_options = any(a.option_strings for a in parser._actions
                          if not isinstance(a, argparse._HelpAction))
        if has_options or path == ("plot", "taxonomy"):
            assert f"## `infdepth {' '.join(path)}`" in text, path
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}" in text, f"{' '.join(path)} {option} is not in docs/cli.md"
                seen += 1
    assert seen >= 10


ROOT = DOCS.parent
#: The project's own text: what it cites must be in the repository.
PROJECT_TEXT = ["README.md", "pyproject.toml", "src", "docs", "tests", "benchmarks"]


def _project_files():
    for entry in PROJECT_TEXT:
        path = ROOT / entry
        if path.is_file():
            yield path
        elif path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.suffix in (".py", ".md", ".toml", ".txt", ".cfg") and f.is_file():
                    yield f


def test_project_is_self_contained():
    """No file cites notes outside the repository; every cited section of docs/theory.md
    exists as a numbered heading there."""
    # spelled backwards so that this file does not contain them either
    outside = [w[::-1] for w in ("dm.YROEHT", "seton derahs", "derahs/..")]
    headings = re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", (DOCS / "theory.md").read_text(),
                          flags=re.MULTILINE)
    assert {"1", "2", "3", "4", "4.1", "4.3", "5", "6", "8"} <= set(headings)
    cited = set()
    for f in _project_files():
        text = f.read_text(errors="replace")
        for word in outside:
            assert word not in text, f"{f.relative_to(ROOT)} mentions {word!r}"
        cited |= set(re.findall(r"theory\.md,? sections? (\d+(?:\.\d+)?)", text))
    assert cited, "no citation of docs/theory.md found"
    assert cited <= set(headings), f"cited sections missing: {sorted(cited - set(headings))}"
