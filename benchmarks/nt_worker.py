"""Worker for ``benchmarks/neural_tangents.py``: neural-tangents Gram matrices and timings.

Runs inside the separate virtual environment that ``neural_tangents.py`` creates (it must
not import infdepth). Reads unit-norm rows from a ``.npy`` file, computes the NNGP and NTK
Gram matrices of depth-L fully connected networks with neural-tangents' ``stax`` (float64,
``jax.jit`` around ``kernel_fn``, the depth loop as ``stax.repeat``, i.e. ``lax.scan``, so
compiling does not grow with L), saves them next to the data and writes one JSON object
to stdout. Progress goes to stderr.

Architectures (L = depth = number of activations; widths do not enter the kernels):

* relu: ``Dense(W_std=sqrt(2), b_std=0)``, then L x ``[Relu(), Dense(W_std=sqrt(2), b_std=0)]``.
* erf: ``Dense(W_std=sqrt(d), b_std=0)``, then L x ``[Erf(), Dense(W_std=1/sqrt(c), b_std=0)]``
  with c = E[erf(u)^2] = (2/pi) arcsin(2/3), u ~ N(0, 1): every pre-activation has variance
  exactly 1, which is what infdepth's normalized erf assumes (erf is not homogeneous).

    python nt_worker.py DATA.npy --depths 1 10 100 --activations relu erf
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from importlib import metadata


def log(message: str) -> None:
    print(f"   [nt] {message}", file=sys.stderr, flush=True)


def main() -> None:
    # this file's folder also holds neural_tangents.py: keep it off the import path
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--activations", nargs="+", default=["relu", "erf"])
    parser.add_argument("--architecture", choices=["mlp", "resnet"], default="mlp",
                        help="resnet: h_l = h_(l-1) + L^-1/2 W_l phi(h_(l-1)) (docs/resnet.md)")
    parser.add_argument("--min-time", type=float, default=2.0,
                        help="repeat timed calls (at most 3) until this many seconds are spent")
    args = parser.parse_args()

    import jax

    jax.config.update("jax_enable_x64", True)
    import neural_tangents as nt
    import numpy as np
    from neural_tangents import stax

    X = np.load(args.data)
    n, d = X.shape
    out_dir = os.path.dirname(os.path.abspath(args.data))
    erf_c = 2 / math.pi * math.asin(2 / 3)
    width = 512  # irrelevant for the kernels
    results = []
    for name in args.activations:
        for depth in args.depths:
            if args.architecture == "resnet":
                # h_0 = U x (q_0 = xi for unit x), branches beta W phi(h) with beta = L^-1/2
                # and phi normalized (relu: sqrt 2 relu; erf: erf / sqrt(E erf(u)^2))
                beta = depth ** -0.5
                scale = math.sqrt(2) if name == "relu" else 1 / math.sqrt(erf_c)
                nonlinearity = stax.Relu() if name == "relu" else stax.Erf()
                first = stax.Dense(width, W_std=math.sqrt(d), b_std=0.0)
                block = stax.serial(
                    stax.FanOut(2),
                    stax.parallel(stax.Identity(),
                                  stax.serial(nonlinearity,
                                              stax.Dense(width, W_std=beta * scale, b_std=0.0))),
                    stax.FanInSum())
            elif name == "relu":
                first = stax.Dense(width, W_std=math.sqrt(2), b_std=0.0)
                block = stax.serial(stax.Relu(), stax.Dense(width, W_std=math.sqrt(2), b_std=0.0))
            elif name == "erf":
                first = stax.Dense(width, W_std=math.sqrt(d), b_std=0.0)
                block = stax.serial(stax.Erf(), stax.Dense(width, W_std=1 / math.sqrt(erf_c),
                                                           b_std=0.0))
            else:
                raise SystemExit(f"unknown activation {name!r}")
            layers = [first, stax.repeat(block, depth)]
            if args.architecture == "resnet":
                layers.append(stax.Dense(1, W_std=1.0, b_std=0.0))  # f = v . h_L / sqrt(n)
            _, _, kernel_fn = stax.serial(*layers)
            kernel_fn = jax.jit(kernel_fn, static_argnames="get")

            def call(kernel_fn=kernel_fn):
                k = kernel_fn(X, None, ("nngp", "ntk"))
                k.ntk.block_until_ready()
                return k

            start = time.perf_counter()
            k = call()
            first_call = time.perf_counter() - start
            times, spent = [], 0.0
            while len(times) < 3 and spent < args.min_time:
                start = time.perf_counter()
                k = call()
                times.append(time.perf_counter() - start)
                spent += times[-1]
            files = {}
            for kind in ("nngp", "ntk"):
                files[kind] = os.path.join(out_dir, f"nt_{name}_{depth}_{kind}.npy")
                np.save(files[kind], np.asarray(getattr(k, kind), dtype=np.float64))
            log(f"{name} depth {depth}: first call (compile + run) {first_call:.3f} s, "
                f"best of {len(times)} {min(times):.4f} s")
            results.append({"activation": name, "depth": depth, "first_call_s": first_call,
                            "time_s": min(times), "repeats": len(times), "files": files})

    versions = {"neural_tangents": nt.__version__, "python": sys.version.split()[0],
                "backend": jax.default_backend(), "x64": bool(jax.config.jax_enable_x64)}
    for package in ("jax", "jaxlib", "numpy", "tensorflow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    print(json.dumps({"n": n, "d": d, "versions": versions, "results": results}), flush=True)


if __name__ == "__main__":
    main()
