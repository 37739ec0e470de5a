"""Run the benchmark suite in sequence and collect every ratio line in one summary.

    python benchmarks/run_all.py [--quick] [--all]

Performance suite (default), each script as a subprocess with its output streamed:

* ``kernels.py``          evaluation cost vs depth, Gram vs matmul + exp floor, vs naive
                          recursion (n = 10,000; ``--quick``: its own ``--quick``, n = 2000)
* ``prediction.py``       depth-infinity prediction, 10^4 test x 10^6 train, d = 16
                          (``--quick``: 2,000 x 100,000; the script has no quick flag)
* ``neural_tangents.py``  against google's neural-tangents, n = 1000, depths 1..1000
                          (``--quick``: n = 400; the first run installs neural-tangents
                          into ``benchmarks/.nt-venv``, a few minutes)

``--all`` adds the accuracy benchmarks: ``finite_vs_infinite.py`` (about five minutes),
``estimators_accuracy.py`` and ``real_data.py --quick`` (its full run takes hours on two
cores; run it by hand for the full table). With ``--quick`` they get smaller grids too.

Writes ``benchmarks/results/latest.txt`` (machine, date, command, wall time and exit
status of every script, and every printed ratio line; for the accuracy benchmarks the
tail of their output) and ``benchmarks/results/latest.log`` (everything). The full
default suite takes about 15 minutes on 2 loaded CPU cores.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
#: a line that reports a comparison
RATIO_LINE = re.compile(r"ratio|speed-up|goal|skipped", re.IGNORECASE)


@dataclass
class Step:
    script: str
    args: list[str] = field(default_factory=list)
    quick_args: list[str] = field(default_factory=list)
    keep: str = ""  # regex: context lines kept in the summary as well
    tail: int = 0  # > 0: also keep the last lines of the output (accuracy tables)


PERFORMANCE = [
    Step("kernels.py", quick_args=["--quick"], keep=r"^machine:|^\d\. |^1\. "),
    Step("prediction.py", quick_args=["--train", "100000", "--test", "2000"],
         keep=r"^(rule|test x train|data|fit|floor|predict) "),
    Step("neural_tangents.py", quick_args=["--quick"],
         keep=r"^trying|^   works|^neural-tangents:|worker wall time"),
]
ACCURACY = [
    Step("finite_vs_infinite.py", [str(RESULTS / "finite_vs_infinite")],
         quick_args=["--widths", "64", "256", "--depths", "1", "4", "--depth-widths", "256"],
         tail=30),
    Step("estimators_accuracy.py", quick_args=["--seeds", "1"], tail=12),
    Step("real_data.py", ["--quick", "--no-progress", "--output", str(RESULTS / "real_data")],
         tail=30),
]


def machine() -> list[str]:
    lines = []
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s*(.+)", lscpu)
        lines.append(f"cpu: {model.group(1).strip() if model else platform.processor()}, "
                     f"{os.cpu_count()} logical cores")
    except OSError:
        lines.append(f"cpu: {platform.processor() or platform.machine()}, "
                     f"{os.cpu_count()} logical cores")
    try:
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
        lines.append(f"memory: {int(mem.group(1)) / 2**20:.1f} GiB")
    except (OSError, AttributeError):
        pass
    lines.append(f"python {platform.python_version()}, {platform.platform()}")
    return lines


def load() -> str:
    try:
        return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "load average unknown"


def summarize(output: list[str], keep: str, tail: int) -> list[str]:
    """Every ratio line, with the rows of a table whose header names a ratio."""
    kept, in_table = [], False
    for line in output:
        if keep and re.search(keep, line):
            kept.append(line)
            in_table = False
        elif RATIO_LINE.search(line):
            kept.append(line)
            in_table = True
        elif in_table and line.strip() and (line[0].isspace() or line[0].isdigit()):
            kept.append(line)
        else:
            in_table = False
    if tail:
        kept += ["-- last lines --", *output[-tail:]]
    return kept


def run(step: Step, quick: bool, log) -> tuple[int, float, list[str], list[str]]:
    command = [sys.executable, str(HERE / step.script), *step.args,
               *(step.quick_args if quick else [])]
    shown = " ".join(["python", f"benchmarks/{step.script}", *command[2:]])
    banner = f"\n{'=' * 78}\n$ {shown}\n{'=' * 78}"
    print(banner, flush=True)
    log.write(banner + "\n")
    output = []
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    for line in proc.stdout:
        print(line, end="", flush=True)
        log.write(line)
        output.append(line.rstrip("\n"))
    rc = proc.wait()
    return rc, time.perf_counter() - start, [shown], output


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes everywhere")
    parser.add_argument("--all", action="store_true", help="add the accuracy benchmarks")
    args = parser.parse_args(argv)
    steps = PERFORMANCE + (ACCURACY if args.all else [])
    RESULTS.mkdir(exist_ok=True)
    started = datetime.datetime.now().astimezone()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    try:
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                "src"], cwd=HERE.parent, capture_output=True,
                               text=True).stdout
        dirty = [line[3:] for line in dirty.splitlines() if line.strip()]
    except OSError:
        dirty = []
    if dirty:
        commit += f" + uncommitted changes in {', '.join(dirty)}"
    header = [f"infdepth benchmark suite, {started:%Y-%m-%d %H:%M %Z}, commit {commit}",
              "command: python benchmarks/run_all.py" + " --quick" * args.quick
              + " --all" * args.all, *machine(), f"at start: {load()}"]
    sections, failures = [], 0
    total = time.perf_counter()
    with open(RESULTS / "latest.log", "w") as log:
        log.write("\n".join(header) + "\n")
        for step in steps:
            rc, seconds, shown, output = run(step, args.quick, log)
            failures += rc != 0
            sections += ["", f"## {step.script}: exit {rc}, {seconds:.0f} s, {load()}",
                         f"$ {shown[0]}", *summarize(output, step.keep, step.tail)]
    header.append(f"total wall time {time.perf_counter() - total:.0f} s; at end: {load()}")
    text = "\n".join(header + sections) + "\n"
    (RESULTS / "latest.txt").write_text(text)
    print(f"\n{'=' * 78}\nSUMMARY (written to {RESULTS / 'latest.txt'})\n{'=' * 78}")
    print(text)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
