"""infdepth against google's neural-tangents: NNGP and NTK Gram matrices of deep networks.

    python benchmarks/neural_tangents.py [--quick] [--n 1000] [--d 100]
        [--depths 1 10 100 1000] [--activations relu erf] [--venv PATH] [--reinstall]

The same quantity from both libraries: the NNGP and NTK Gram matrices (both, in one call
each) of a fully connected network with L activations (ReLU, erf) on n unit vectors in
d dimensions, in float64.

neural-tangents is never installed into the current environment. A separate virtual
environment (default ``benchmarks/.nt-venv``, git-ignored) is created and the version
pairs in ``CANDIDATES`` are tried in turn with ``pip install neural-tangents==V
jax[cpu]==W`` until ``import neural_tangents`` and building a ``stax`` network work; if
none does, the script prints ``skipped: ...`` and exits 0. neural-tangents then runs in a
subprocess of that environment (``benchmarks/nt_worker.py``; the data go through a
temporary ``.npy`` file) and infdepth in this process.

Normalizations (derived from the layer recursions, checked numerically here; docs/theory.md
section 3). infdepth returns the normalized kernels S_L(xi) and K_L(xi) / K_L(1) of the
normalized activation (dual(1) = 1), K_L(1) = D_L = sum_{i<=L} m^i, m = dual'(1).
neural-tangents' Dense layer (NTK parameterization) maps the input kernel <x, z> / d to
W_std^2 (...) and its NTK recursion is Theta <- W_std^2 (Theta * E[phi'phi'] + E[phi phi]).

* relu, every ``Dense(W_std=sqrt(2), b_std=0)`` (unit-norm inputs): ReLU is homogeneous,
  so nt's kernels are the normalized ones times 2 / d: nt NNGP = (2/d) S_L and
  nt NTK = (2/d) (L + 1) K_L / K_L(1) (m = 1 for ReLU).
* erf (not homogeneous: its dual depends on the pre-activation variance), first
  ``Dense(W_std=sqrt(d))`` and then ``Dense(W_std=1/sqrt(c))``, c = E[erf(u)^2] =
  (2/pi) arcsin(2/3): every pre-activation has variance 1 and sqrt(1/c) erf is infdepth's
  normalized erf, so nt NNGP = S_L and nt NTK = D_L K_L / K_L(1) with m = 1.2257.

Reported per activation and depth: neural-tangents' first call (jit compile + run) and
best time per Gram, infdepth's table build (once per activation, kind and depth) and best
time per Gram, the time ratio nt / infdepth, the largest entrywise relative difference
between the rescaled kernels, and both libraries' largest relative error against an
mpmath (30 digits) evaluation of the recursion on a sample of pairs.
neural-tangents' cost grows linearly with the depth; infdepth's does not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mpmath
import numpy as np

import infdepth

HERE = Path(__file__).resolve().parent
#: (neural-tangents, jax) pairs, tried in order. 0.6.5 + jax 0.4.30 / 0.4.35 / 0.4.38 /
#: 0.5.3 were checked to work on Python 3.11 (November 2026); jax >= 0.6 removed
#: ``jax.core.Jaxpr``, which neural-tangents 0.6.5 imports; 0.4.23 needs numpy < 2.
CANDIDATES = [("0.6.5", "0.4.38"), ("0.6.5", "0.4.30"), ("0.6.5", "0.5.3"),
              ("0.6.5", "0.4.23 numpy<2")]
CHECK = ("import neural_tangents as nt; "
         "nt.stax.serial(nt.stax.Dense(1), nt.stax.Relu(), nt.stax.Dense(1))")
MARKER = "infdepth-nt-ok.json"
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}


# ----------------------------------------------------------------------------- the venv
def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _check(venv: Path) -> tuple[bool, str]:
    try:
        proc = subprocess.run([str(venv_python(venv)), "-c", CHECK], cwd=venv,
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, **QUIET})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-600:]


def ensure_venv(venv: Path, reinstall: bool) -> dict | None:
    """A working neural-tangents environment: its version pair, or None."""
    marker = venv / MARKER
    if not reinstall and marker.exists():
        ok, _ = _check(venv)
        if ok:
            return json.loads(marker.read_text())
        print(f"existing {venv} no longer works; rebuilding it")
    failures = []
    for nt_version, jax_spec in CANDIDATES:
        jax_version, *extra = jax_spec.split()
        shutil.rmtree(venv, ignore_errors=True)
        spec = " ".join([f"neural-tangents=={nt_version}", f"jax[cpu]=={jax_version}", *extra])
        print(f"trying {spec} in {venv} ...", flush=True)
        start = time.perf_counter()
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                           capture_output=True, text=True, timeout=300)
            proc = subprocess.run(
                [str(venv_python(venv)), "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", f"neural-tangents=={nt_version}",
                 f"jax[cpu]=={jax_version}", *extra],
                capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{nt_version}/{jax_version}: {exc}")
            print(f"   failed: {exc}")
            continue
        if proc.returncode != 0:
            tail = [line for line in proc.stderr.splitlines() if "is ignored" not in line]
            failures.append(f"{nt_version}/{jax_version}: pip failed: {' | '.join(tail[-3:])}")
            print("   pip failed:\n      " + "\n      ".join(tail[-5:]))
            continue
        ok, message = _check(venv)
        if not ok:
            last = message.splitlines()[-1] if message else "?"
            failures.append(f"{nt_version}/{jax_version}: import failed: {last}")
            print(f"   installed but the check failed: {last}")
            continue
        info = {"neural_tangents": nt_version, "jax": jax_version, "extra": extra,
                "install_s": round(time.perf_counter() - start, 1)}
        marker.write_text(json.dumps(info))
        print(f"   works (installed in {info['install_s']:.0f} s)")
        return info
    shutil.rmtree(venv, ignore_errors=True)
    print("skipped: no neural-tangents/jax version pair could be installed and imported:\n   "
          + "\n   ".join(failures))
    return None


# ----------------------------------------------------------------------------- references
def exact_kernels(xi: mpmath.mpf, name: str, depth: int) -> tuple[float, float]:
    """Normalized (S_L, K_L / K_L(1)) by the recursion in 30-digit arithmetic."""
    if name == "relu":
        def dual(s):
            return (mpmath.sqrt(1 - s * s) + (mpmath.pi - mpmath.acos(s)) * s) / mpmath.pi

        def slope(s):
            return (mpmath.pi - mpmath.acos(s)) / mpmath.pi
    else:
        norm = mpmath.asin(mpmath.mpf(2) / 3)

        def dual(s):
            return mpmath.asin(2 * s / 3) / norm

        def slope(s):
            return (mpmath.mpf(2) / 3) / mpmath.sqrt(1 - (2 * s / 3) ** 2) / norm
    m = slope(mpmath.mpf(1))
    S = K = xi
    for _ in range(depth):
        K = dual(S) + K * slope(S)
        S = dual(S)
    D = depth + 1 if m == 1 else (m ** (depth + 1) - 1) / (m - 1)
    return float(S), float(K / D)


def sample_pairs(X: np.ndarray, count: int, rng) -> list[tuple[int, int]]:
    """Two diagonal pairs, the closest pair and random ones.

    (Nearly orthogonal pairs are left out on purpose: there the rounding of the inner
    product itself, ~1e-17 absolute, is a large relative error of k(xi) ~ c xi, the same
    for both libraries and no property of either.)
    """
    G = X @ X.T
    np.fill_diagonal(G, np.nan)
    pairs = [(0, 0), (1, 1),
             tuple(int(v) for v in np.unravel_index(np.nanargmax(G), G.shape))]
    while len(pairs) < count:
        i, j = (int(v) for v in rng.integers(0, X.shape[0], 2))
        if i != j:
            pairs.append((i, j))
    return pairs


def correlation(x: np.ndarray, z: np.ndarray) -> mpmath.mpf:
    """<x, z> / (|x| |z|) of the stored floats, in mpmath (exactly 1 when x is z)."""
    x = [mpmath.mpf(float(v)) for v in x]
    z = [mpmath.mpf(float(v)) for v in z]
    xz = mpmath.fsum(a * b for a, b in zip(x, z, strict=True))
    xx = mpmath.fsum(a * a for a in x)
    zz = mpmath.fsum(b * b for b in z)
    return min(max(xz / mpmath.sqrt(xx * zz), mpmath.mpf(-1)), mpmath.mpf(1))


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Largest |a - b| / |b| (entries where b = 0 count as |a - b|)."""
    scale = np.where(b == 0, 1.0, np.abs(b))
    return float(np.max(np.abs(a - b) / scale))


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="number of points (Gram n x n)")
    parser.add_argument("--d", type=int, default=100, help="dimension")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--activations", nargs="+", default=["relu", "erf"],
                        choices=["relu", "erf"])
    parser.add_argument("--quick", action="store_true", help="n = 400")
    parser.add_argument("--venv", type=Path, default=HERE / ".nt-venv")
    parser.add_argument("--reinstall", action="store_true", help="rebuild the nt venv")
    parser.add_argument("--pairs", type=int, default=12, help="pairs checked against mpmath")
    args = parser.parse_args(argv)
    n = 400 if args.quick else args.n
    d = args.d

    info = ensure_venv(args.venv.resolve(), args.reinstall)
    if info is None:
        return 0

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    mpmath.mp.dps = 30
    pairs = sample_pairs(X, args.pairs, rng)
    xi_exact = [correlation(X[i], X[j]) for i, j in pairs]
    off = ~np.eye(n, dtype=bool)
    rows_i = np.array([p[0] for p in pairs])
    rows_j = np.array([p[1] for p in pairs])

    with tempfile.TemporaryDirectory(prefix="infdepth-nt-") as tmp:
        data = Path(tmp) / "X.npy"
        np.save(data, X)
        print(f"\nneural-tangents: n = {n}, d = {d}, depths {args.depths}, "
              f"activations {args.activations} (float64, jit, stax.repeat)", flush=True)
        stdout_path = Path(tmp) / "nt.json"
        start = time.perf_counter()
        with open(stdout_path, "w") as stdout:
            proc = subprocess.Popen(
                [str(venv_python(args.venv.resolve())), str(HERE / "nt_worker.py"), str(data),
                 "--depths", *map(str, args.depths), "--activations", *args.activations],
                stdout=stdout, stderr=subprocess.PIPE, text=True,
                env={**os.environ, **QUIET}, cwd=tmp)
            noise = []
            for line in proc.stderr:
                if line.startswith("   [nt]"):
                    print(line, end="", flush=True)
                else:
                    noise.append(line)
            proc.wait()
        if proc.returncode != 0:
            print("".join(noise[-30:]))
            print(f"skipped: the neural-tangents worker failed (exit {proc.returncode})")
            return 0
        lines = [ln for ln in stdout_path.read_text().splitlines() if ln.startswith("{")]
        report = json.loads(lines[-1])
        print(f"   worker wall time {time.perf_counter() - start:.0f} s; versions "
              + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))

        rows = []
        for entry in report["results"]:
            name, depth = entry["activation"], entry["depth"]
            act = infdepth.activation(name)
            m = act.slope_at_one
            D = depth + 1 if m == 1 else (m ** (depth + 1) - 1) / (m - 1)
            if name == "relu":
                scale_nngp, scale_ntk = 2 / d, 2 / d * D
            else:
                scale_nngp, scale_ntk = 1.0, D
            nt_nngp = np.load(entry["files"]["nngp"]) / scale_nngp
            nt_ntk = np.load(entry["files"]["ntk"]) / scale_ntk

            kernels = [infdepth.Kernel(act, kind, depth) for kind in ("nngp", "ntk")]
            start = time.perf_counter()
            for kernel in kernels:
                kernel.function  # noqa: B018 - builds (and caches) the table
            build = time.perf_counter() - start
            for kernel in kernels:
                kernel(X[:10])  # one-time costs (compiled kernels) outside the timing
            times, spent = [], 0.0
            while len(times) < 2 or (len(times) < 5 and spent < 1.0):
                start = time.perf_counter()
                ours = [kernel(X) for kernel in kernels]
                times.append(time.perf_counter() - start)
                spent += times[-1]
            ours_s = min(times)

            exact = np.array([exact_kernels(x, name, depth) for x in xi_exact])
            err_nt = max(rel_diff(nt_nngp[rows_i, rows_j], exact[:, 0]),
                         rel_diff(nt_ntk[rows_i, rows_j], exact[:, 1]))
            err_ours = max(rel_diff(ours[0][rows_i, rows_j], exact[:, 0]),
                           rel_diff(ours[1][rows_i, rows_j], exact[:, 1]))
            rows.append(dict(name=name, depth=depth, nt_first=entry["first_call_s"],
                             nt_s=entry["time_s"], build=build, ours_s=ours_s,
                             ratio=entry["time_s"] / ours_s,
                             diff_nngp=rel_diff(nt_nngp[off], ours[0][off]),
                             diff_ntk=rel_diff(nt_ntk[off], ours[1][off]),
                             diff_diag=max(rel_diff(np.diag(nt_nngp), np.diag(ours[0])),
                                           rel_diff(np.diag(nt_ntk), np.diag(ours[1]))),
                             bad_diag=int(np.sum(~(np.abs(np.diag(nt_nngp) - 1) < 1e-3)
                                                 | ~(np.abs(np.diag(nt_ntk) - 1) < 1e-3))),
                             err_nt=err_nt, err_ours=err_ours))

    print(f"\nNNGP + NTK Gram matrices, {n} x {n}, d = {d} (times in seconds per Gram pair)")
    print(f"{'act':>5} {'depth':>6} {'nt 1st':>8} {'nt':>9} {'nt/layer':>9} {'id build':>9} "
          f"{'infdepth':>9} {'nt/id':>8} {'diff NNGP':>10} {'diff NTK':>9} {'diff diag':>9} "
          f"{'bad':>4} {'err nt':>8} {'err id':>8}")
    for r in rows:
        print(f"{r['name']:>5} {r['depth']:>6} {r['nt_first']:8.2f} {r['nt_s']:9.4f} "
              f"{r['nt_s'] / r['depth']:9.5f} {r['build']:9.3f} {r['ours_s']:9.4f} "
              f"{r['ratio']:8.1f} {r['diff_nngp']:10.1e} {r['diff_ntk']:9.1e} "
              f"{r['diff_diag']:9.1e} {r['bad_diag']:4d} "
              f"{r['err_nt']:8.1e} {r['err_ours']:8.1e}")
    print("diff NNGP / NTK: largest relative difference nt vs infdepth after rescaling, "
          "off-diagonal entries;\ndiff diag: the same on the diagonal (x with itself, exactly 1 "
          "after rescaling); bad: diagonal entries of nt off by more than 1e-3 (or not "
          "finite);\n"
          f"err: largest relative error of NNGP and NTK against mpmath\n(the recursion at "
          f"30 digits) on {len(pairs)} pairs: 2 diagonal, the closest, random ones")
    print()
    for r in rows:
        bad = f", {r['bad_diag']} of {n} nt diagonal entries wrong" if r["bad_diag"] else ""
        print(f"RATIO nt time / infdepth time, {r['name']} depth {r['depth']} (n = {n}): "
              f"{r['ratio']:.1f}  [nt {r['nt_s']:.4f} s, infdepth {r['ours_s']:.4f} s "
              f"+ {r['build']:.2f} s table build once (one-shot ratio incl. build "
              f"{r['nt_s'] / (r['ours_s'] + r['build']):.2f}); max rel diff off-diagonal "
              f"{max(r['diff_nngp'], r['diff_ntk']):.1e}, diagonal {r['diff_diag']:.1e}{bad}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
