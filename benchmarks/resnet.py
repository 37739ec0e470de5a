"""ResNet kernels (issue 16): Gram cost, finite networks, accuracy. Ratios measured in one run.

    python benchmarks/resnet.py [--quick] [--n 4000] [--part gram,width,joint,accuracy]

1. gram: the n x n Gram matrix (d = 100) of the normalized ResNet NTK at depths 10, 10^4
   and infinity (gamma = 1/2), as a ratio to the MLP NTK's Gram matrix of the same
   activation and size (at depth infinity the MLP ReLU has no kernel: the ratio is then to
   the MLP at depth 10^4; erf has one). Table builds are timed separately.
2. width: RMS error of the empirical NNGP/NTK of ``infdepth.nets.ResNet`` (ReLU, L = 8 /
   L = 4, 6 points on S^4) against the kernel, mean over seeds, and the fitted slope of
   log error vs log width (CLT: -1/2).
3. joint: width and depth grown together against the depth-infinity kernel, mean and
   standard deviation over seeds (error bars).
4. accuracy: 5-fold accuracy of InfiniteNetworkClassifier (ReLU NTK) for the MLP and the
   ResNet (gamma = 1/2) at depths 1, 10, 100, infinity on breast cancer and the d = 5
   Dirichlet task (with its Bayes accuracy).
5. consistency: test accuracy (5000 fresh points) of the depth-infinity ResNet NTK
   classifier on the d = 5 Dirichlet task as n grows, ridgeless and with ridge
   0.1 sqrt(n) on the normalized Gram matrix (lambda = ridge / n ~ n^-1/2), against the
   Bayes accuracy and the depth-3 MLP.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

import infdepth


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gram(n: int) -> dict:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 100))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    out = {}
    for act in ("relu", "erf"):
        for depth in (10, 10**4, math.inf):
            mlp_depth = depth if (depth < math.inf or act == "erf") else 10**4
            t0 = time.perf_counter()
            res = infdepth.Kernel(act, "ntk", depth, architecture="resnet")
            _ = res.function
            build = time.perf_counter() - t0
            mlp = infdepth.Kernel(act, "ntk", mlp_depth)
            _ = mlp.function
            res(X[:64])  # compile / warm the compiled passes
            mlp(X[:64])
            t_res = best_of(lambda r=res: r(X))
            t_mlp = best_of(lambda m=mlp: m(X))
            key = f"{act} depth {depth}"
            out[key] = {"resnet_s": t_res, "mlp_s": t_mlp, "ratio": t_res / t_mlp,
                        "resnet_table_build_s": build, "mlp_depth": mlp_depth}
            print(f"gram n={n} {key:>16}: ResNet {t_res:.3f}s, MLP(depth {mlp_depth}) "
                  f"{t_mlp:.3f}s, ratio {t_res / t_mlp:.2f} (ResNet table build {build:.1f}s)",
                  flush=True)
    return out


def _points():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 5))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _reference(kind, depth, X):
    from infdepth.resnet import resnet_diagonal

    fn = infdepth.ntk if kind == "ntk" else infdepth.nngp
    return resnet_diagonal("relu", kind, depth) * fn(np.clip(X @ X.T, -1, 1), "relu", depth,
                                                      architecture="resnet")


def _errors(kind, width, depth, X, ref, seeds):
    import torch

    from infdepth.nets import ResNet, empirical_nngp, empirical_ntk

    errors = []
    for seed in seeds:
        net = ResNet(X.shape[1], width, depth, "relu", generator=seed, dtype=torch.float64)
        K = empirical_ntk(net, X) if kind == "ntk" else empirical_nngp(net, X)
        errors.append(float(np.sqrt(np.mean((K.numpy() - ref) ** 2))))
    return np.array(errors)


def width(quick: bool) -> dict:
    X = _points()
    out = {}
    seeds = range(6 if quick else 16)
    for kind, widths, depth in (("nngp", (64, 128, 256, 512, 1024), 8),
                                ("ntk", (32, 64, 128, 256, 512), 4)):
        ref = _reference(kind, depth, X)
        errs = [_errors(kind, w, depth, X, ref, seeds) for w in widths]
        means = [float(e.mean()) for e in errs]
        slope = float(np.polyfit(np.log(widths), np.log(means), 1)[0])
        out[kind] = {"widths": list(widths), "depth": depth, "rms_error": means,
                     "std": [float(e.std(ddof=1)) for e in errs], "slope": slope}
        print(f"width {kind} L={depth}: " + ", ".join(
            f"{w}: {m:.4f}+-{e.std(ddof=1):.4f}" for w, m, e in zip(widths, means, errs,
                                                                   strict=True))
              + f"; fitted slope {slope:.3f}", flush=True)
    return out


def joint(quick: bool, kinds=("nngp", "ntk")) -> dict:
    X = _points()
    seeds = range(6 if quick else 16)
    out = {}
    sizes = {"nngp": ((64, 4), (256, 8), (1024, 16)) + (() if quick else ((2048, 32),)),
             "ntk": ((32, 4), (128, 8), (512, 16))}
    for kind in kinds:
        ref = _reference(kind, math.inf, X)
        for w, L in sizes[kind]:
            e = _errors(kind, w, L, X, ref, seeds)
            out[f"{kind} {w}x{L}"] = {"mean": float(e.mean()), "std": float(e.std(ddof=1))}
            print(f"joint width {w}, depth {L}: RMS error vs depth-infinity {kind.upper()} "
                  f"{e.mean():.4f} +- {e.std(ddof=1):.4f}", flush=True)
    return out


def accuracy(quick: bool) -> dict:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import cross_val_score

    from infdepth.data import paper_tasks

    task = paper_tasks()[5]
    Xd, yd = task.sample(400 if quick else 1000, random_state=0)
    sets = {"breast_cancer": load_breast_cancer(return_X_y=True), "dirichlet_d5": (Xd, yd)}
    out = {"dirichlet_d5_bayes": float(task.bayes_accuracy(*task.sample(20000, random_state=1)))}
    for name, (X, y) in sets.items():
        for arch in ("mlp", "resnet"):
            for depth in (1, 10, 100, math.inf):
                if arch == "mlp" and depth == math.inf:
                    continue  # the MLP ReLU's depth-infinity rule is the majority vote
                clf = infdepth.InfiniteNetworkClassifier("relu", depth=depth, architecture=arch,
                                                         projection=None if name.startswith(
                                                             "dirichlet") else "auto")
                acc = float(cross_val_score(clf, X, y, cv=5).mean())
                out[f"{name} {arch} {depth}"] = acc
                print(f"accuracy {name:>14} {arch:>6} depth {depth}: {acc:.4f}", flush=True)
    print(f"Dirichlet d=5 Bayes accuracy {out['dirichlet_d5_bayes']:.4f}")
    return out


def consistency(quick: bool) -> dict:
    from infdepth.data import paper_tasks

    task = paper_tasks()[5]
    Xt, yt = task.sample(5000, random_state=123)
    out = {"bayes": float(task.bayes_accuracy(Xt, yt))}
    print(f"consistency d=5 Dirichlet: Bayes accuracy {out['bayes']:.4f}", flush=True)
    for n in (250, 1000) if quick else (250, 1000, 4000):
        X, y = task.sample(n, random_state=n)
        for label, kw in (("resnet inf ridge 0", {"architecture": "resnet", "depth": math.inf}),
                          ("resnet inf ridge 0.1 sqrt(n)", {"architecture": "resnet",
                                                            "depth": math.inf,
                                                            "ridge": 0.1 * math.sqrt(n)}),
                          ("mlp depth 3 ridge 0", {"depth": 3})):
            clf = infdepth.InfiniteNetworkClassifier("relu", projection=None, **kw).fit(X, y)
            acc = float(clf.score(Xt, yt))
            out[f"n={n} {label}"] = acc
            print(f"consistency n={n:5d} {label:>30}: {acc:.4f}", flush=True)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--part", default="gram,width,joint,accuracy,consistency")
    args = parser.parse_args(argv)
    parts = args.part.split(",")
    results = {}
    if "gram" in parts:
        results["gram"] = gram(1000 if args.quick else args.n)
    if "width" in parts:
        results["width"] = width(args.quick)
    if "joint" in parts:
        results["joint"] = joint(args.quick)
    if "accuracy" in parts:
        results["accuracy"] = accuracy(args.quick)
    if "consistency" in parts:
        results["consistency"] = consistency(args.quick)
    return results


if __name__ == "__main__":
    main()
