"""Residual networks against neural-tangents' ``stax`` residual stack (issue 16).

    python benchmarks/nt_resnet.py [--n 300] [--depths 1 3 10 30 100]

The same network in both: h_0 = U x, h_l = h_(l-1) + L^-1/2 W_l phi(h_(l-1)) / sqrt(n),
f = v . h_L / sqrt(n) (docs/resnet.md section 1), in stax as ``FanOut(2)``,
``parallel(Identity(), serial(phi, Dense(W_std=beta * scale)))``, ``FanInSum()``
repeated L times. Both kernels are normalized by their diagonal (constant on the sphere):
infdepth's ``Kernel(act, kind, L, architecture="resnet")`` against nt's
``kernel_fn / diag``. Prints the largest relative difference off the diagonal and the
time ratio nt / infdepth for each depth. neural-tangents runs in its own venv (see
benchmarks/neural_tangents.py, which creates it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import infdepth

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from neural_tangents import QUIET, ensure_venv, rel_diff, venv_python  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--d", type=int, default=20)
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 3, 10, 30, 100])
    parser.add_argument("--venv", type=Path, default=HERE / ".nt-venv")
    args = parser.parse_args(argv)
    if ensure_venv(args.venv.resolve(), False) is None:
        return 0
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    off = ~np.eye(args.n, dtype=bool)
    with tempfile.TemporaryDirectory(prefix="infdepth-nt-resnet-") as tmp:
        data = Path(tmp) / "X.npy"
        np.save(data, X)
        proc = subprocess.run(
            [str(venv_python(args.venv.resolve())), str(HERE / "nt_worker.py"), str(data),
             "--architecture", "resnet", "--depths", *map(str, args.depths),
             "--activations", "relu", "erf", "--min-time", "0.5"],
            capture_output=True, text=True, env={**__import__("os").environ, **QUIET}, cwd=tmp)
        if proc.returncode != 0:
            print(proc.stderr[-3000:])
            print(f"skipped: the neural-tangents worker failed (exit {proc.returncode})")
            return 0
        report = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
        print(f"neural-tangents {report['versions']['neural_tangents']} residual stack vs "
              f"infdepth ResNet kernels, n = {args.n}, d = {args.d}")
        print(f"{'act':>5} {'depth':>6} {'diff NNGP':>10} {'diff NTK':>9} {'nt s':>8} "
              f"{'infdepth s':>11} {'nt/id':>7}")
        for entry in report["results"]:
            name, depth = entry["activation"], entry["depth"]
            diffs, ours_s = [], 0.0
            for kind in ("nngp", "ntk"):
                theirs = np.load(entry["files"][kind])
                theirs = theirs / np.mean(np.diag(theirs))
                kernel = infdepth.Kernel(name, kind, depth, architecture="resnet")
                kernel(X[:5])  # build the table outside the timing
                start = time.perf_counter()
                ours = kernel(X)
                ours_s += time.perf_counter() - start
                diffs.append(rel_diff(theirs[off], ours[off]))
            print(f"{name:>5} {depth:>6} {diffs[0]:10.1e} {diffs[1]:9.1e} "
                  f"{entry['time_s']:8.4f} {ours_s:11.4f} {entry['time_s'] / ours_s:7.1f}")
            print(f"RATIO nt time / infdepth time, resnet {name} depth {depth} "
                  f"(n = {args.n}): {entry['time_s'] / ours_s:.1f}  [max rel diff "
                  f"NNGP {diffs[0]:.1e}, NTK {diffs[1]:.1e}]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
