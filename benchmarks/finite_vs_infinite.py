"""Finite wide-and-deep networks against their infinite-width kernel classifiers.

Task: two Dirichlet classes on the simplex of R^3 projected to the sphere S^2
(``infdepth.data.paper_tasks()[3]``, exact Bayes rule known). For each activation, depth
L and width k a network in the NTK parameterization, centered at initialization (f -
f_0), is trained by full-batch gradient descent on (1/2n) sum_i (f(x_i) - y_i)^2 for a
fixed number of steps with lr = 1 / lambda_max(K / n), K the infinite-width NTK Gram
matrix. It is compared with

* the kernel classifier sign(k(x)^T K^{-1} y) (the minimum-norm interpolant, what the
  infinitely wide network converges to), and
* the time-matched kernel predictor: gradient descent with the same lr and number of
  steps in the infinite-width limit, k(x)^T K^{-1} (I - (I - lr K / n)^t) y. Agreement
  with it isolates finite-width effects from incomplete optimization.

Printed and saved (CSV + PNG in the output directory): sign agreement and relative
error vs width and depth, and test accuracy of ReLU vs a designed activation
(dual xi/2 + xi^3/2, singular-kernel exponent alpha = 2 = dimension of S^2) vs a bounded
design (sin, dual sinh(a xi)/sinh(a) with a = 2.676, alpha ~ 2) vs the Bayes classifier.

Run ``python benchmarks/finite_vs_infinite.py OUTDIR`` (about five minutes on 2 CPU cores;
``--threads 1`` is faster on a busy machine). Default cells: widths 64..4096 at depth 2,
depths 1..16 at widths 256 and 1024; ``--full`` adds the depth sweep at width 4096.
A kernel-only comparison (NTK interpolant at n = 400, depths up to 256) follows.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from infdepth import Activation, activation, ntk
from infdepth.data import paper_tasks
from infdepth.nets import MLP, Centered, train

ACTIVATIONS = {
    "relu": lambda: activation("relu"),
    "designed": lambda: Activation.from_dual_coefficients([0, 0.5, 0, 0.5], name="designed"),
    "sine": lambda: activation("sine_family", a=2.676),
}


# ----------------------------------------------------------------------------- data
def make_task():
    """The paper's d = 3 task (exact Bayes classifier known)."""
    return paper_tasks()[3]


# ----------------------------------------------------------------------------- kernels
def ntk_matrix(act: Activation, depth: int, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    """Un-normalized NTK K_L(<x, z>) (K_L(1) = sum_{i<=L} m^i) for unit rows of X and Z."""
    xi = np.clip(X @ Z.T, -1.0, 1.0)
    return sum(act.slope_at_one**i for i in range(depth + 1)) * ntk(xi, act, depth)


@dataclass
class KernelSolution:
    lr: float
    interpolant: np.ndarray  # k(x)^T K^{-1} y on the test points
    timed: np.ndarray  # after `steps` steps of gradient descent at lr


def kernel_solution(K: np.ndarray, K_test: np.ndarray, y: np.ndarray, steps: int) -> KernelSolution:
    n = len(y)
    lam, V = np.linalg.eigh(K)
    lam = np.maximum(lam, lam[-1] * 1e-15)
    lr = 1.0 / (lam[-1] / n)
    c = V.T @ y
    # (1 - (1 - lr lam / n)^t) / lam, with the small-lam limit lr t / n kept accurate
    # (0 <= lr lam / n <= 1 since lr = n / lam_max).
    x = np.clip(lr * lam / n, 0.0, 1.0 - 2.0**-53)
    decay = -np.expm1(steps * np.log1p(-x))
    return KernelSolution(lr, K_test @ (V @ (c / lam)), K_test @ (V @ (c * decay / lam)))


# ----------------------------------------------------------------------------- runs
@dataclass
class Row:
    activation: str
    depth: int
    width: int
    seed: int
    steps: int
    train_loss: float
    agree_interpolant: float
    agree_timed: float
    rel_error_timed: float
    net_accuracy: float
    kernel_accuracy: float
    kernel_timed_accuracy: float
    bayes_accuracy: float
    seconds: float
    status: str


def run_network(name, act, depth, width, seed, data, solution, args, bayes_acc) -> Row:
    X, y, Xt, yt = data
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    start = time.perf_counter()
    net = Centered(MLP(X.shape[1], width, depth, act, generator=seed, dtype=dtype))
    status, loss = "ok", math.nan
    f = np.full(len(yt), np.nan)
    try:
        result = train(net, X, y, lr=solution.lr, steps=args.steps, target_loss=0.0,
                       seed=seed, progress=args.progress)
        loss = result.final_loss
        with torch.no_grad():
            f = net(torch.as_tensor(Xt, dtype=dtype))[:, 0].double().numpy()
        if not np.all(np.isfinite(f)):
            status = "non-finite output"
    except FloatingPointError:
        status = "diverged"
    seconds = time.perf_counter() - start
    ok = status == "ok"
    sign = np.sign(f)
    return Row(
        activation=name, depth=depth, width=width, seed=seed, steps=args.steps,
        train_loss=loss,
        agree_interpolant=float(np.mean(sign == np.sign(solution.interpolant))) if ok else math.nan,
        agree_timed=float(np.mean(sign == np.sign(solution.timed))) if ok else math.nan,
        rel_error_timed=(float(np.linalg.norm(f - solution.timed) / np.linalg.norm(solution.timed))
                         if ok else math.nan),
        net_accuracy=float(np.mean(sign == yt)) if ok else math.nan,
        kernel_accuracy=float(np.mean(np.sign(solution.interpolant) == yt)),
        kernel_timed_accuracy=float(np.mean(np.sign(solution.timed) == yt)),
        bayes_accuracy=bayes_acc, seconds=seconds, status=status,
    )


def kernel_accuracies(task, names, depths, n_train, Xt, yt, seed):
    """Test accuracy of the NTK interpolant sign(k(x)^T K^{-1} y) at a larger n, and the
    condition number of K (smooth shallow kernels are numerically singular)."""
    X, y = task.sample(n_train, random_state=seed + 2)
    accuracy, condition = {}, {}
    for name in names:
        act = ACTIVATIONS[name]()
        accuracy[name], condition[name] = [], []
        for depth in depths:
            K = ntk_matrix(act, depth, X, X) / sum(act.slope_at_one**i for i in range(depth + 1))
            try:
                coef = np.linalg.solve(K, y.astype(float))
            except np.linalg.LinAlgError:  # near-duplicate points: least-squares fallback
                coef = np.linalg.lstsq(K, y.astype(float), rcond=None)[0]
            f = ntk_matrix(act, depth, Xt, X) @ coef
            accuracy[name].append(float(np.mean(np.sign(f) == yt)))
            condition[name].append(float(np.linalg.cond(K)))
    return accuracy, condition


def plot(rows: list[Row], path: Path, bayes_acc: float, width_depth: int,
         kernel_depths: list[int], kernel_acc: dict[str, list[float]], kernel_n: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6))
    names = list(dict.fromkeys(r.activation for r in rows))
    colors = {name: f"C{i}" for i, name in enumerate(names)}

    def mean(rs, attr):
        v = [getattr(r, attr) for r in rs]
        return float(np.nanmean(v)) if np.any(np.isfinite(v)) else math.nan

    for name in names:
        rs = [r for r in rows if r.activation == name and r.depth == width_depth]
        widths = sorted({r.width for r in rs})
        by_w = [[r for r in rs if r.width == w] for w in widths]
        c = colors[name]
        axes[0].plot(widths, [mean(g, "agree_timed") for g in by_w], "o-", color=c,
                     label=f"{name}: kernel GD, same steps")
        axes[0].plot(widths, [mean(g, "agree_interpolant") for g in by_w], "x:", color=c,
                     label=f"{name}: kernel interpolant")
        axes[1].loglog(widths, [mean(g, "rel_error_timed") for g in by_w], "o-", color=c,
                       label=name)
        for width, style in zip(sorted({r.width for r in rows if r.activation == name
                                        and r.depth != width_depth} | set()),
                                ["o-", "s--", "^:"], strict=False):
            ds = sorted({r.depth for r in rows if r.activation == name and r.width == width})
            by_d = [[r for r in rows if r.activation == name and r.width == width
                     and r.depth == d] for d in ds]
            axes[2].plot(ds, [mean(g, "agree_timed") for g in by_d], style, color=c,
                         label=f"{name}, width {width}")
    w = np.array([min(r.width for r in rows), max(r.width for r in rows)], dtype=float)
    axes[1].loglog(w, 2 / np.sqrt(w), "k--", lw=0.8, label="2 / sqrt(width)")
    axes[0].set(xscale="log", xlabel="width", ylabel="test sign agreement",
                title=f"network vs kernel, depth {width_depth}")
    axes[1].set(xlabel="width", ylabel="relative error of test outputs",
                title=f"network vs kernel GD at equal steps, depth {width_depth}")
    axes[2].set(xscale="log", xlabel="depth L", ylabel="test sign agreement",
                title="network vs kernel GD at equal steps")
    for name, acc in kernel_acc.items():
        axes[3].plot(kernel_depths, acc, "s--", color=colors.get(name),
                     label=f"{name}: NTK interpolant, n={kernel_n}")
    for name in names:
        rs = [r for r in rows if r.activation == name]
        ds = sorted({r.depth for r in rs})
        acc = [mean([r for r in rs if r.depth == d and r.width == max(
            q.width for q in rs if q.depth == d)], "net_accuracy") for d in ds]
        axes[3].plot(ds, acc, "o", color=colors[name], label=f"{name}: widest network")
    axes[3].axhline(bayes_acc, color="k", lw=1, label="Bayes")
    axes[3].set(xscale="log", xlabel="depth L", ylabel="test accuracy", title="accuracy")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output directory for the CSV and PNG")
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 256, 1024, 4096],
                        help="widths of the width sweep")
    parser.add_argument("--width-depth", type=int, default=2, help="depth of the width sweep")
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                        help="depths of the depth sweep")
    parser.add_argument("--depth-widths", type=int, nargs="+", default=[256, 1024],
                        help="widths of the depth sweep")
    parser.add_argument("--activations", nargs="+", default=["relu", "designed", "sine"],
                        choices=sorted(ACTIVATIONS))
    parser.add_argument("--n-train", type=int, default=40)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--kernel-n-train", type=int, default=400,
                        help="training set size of the kernel-only accuracy comparison")
    parser.add_argument("--steps", type=int, default=100, help="gradient descent steps")
    parser.add_argument("--seeds", type=int, default=1, help="network seeds per cell")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default torch's; 1 is faster on a busy machine)")
    parser.add_argument("--full", action="store_true",
                        help="also the depth sweep at width 4096 (depth 16: ~250M parameters, "
                             "several GB and many minutes on a CPU)")
    parser.add_argument("--progress", action="store_true", help="tqdm bars while training")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    args.out.mkdir(parents=True, exist_ok=True)

    task = make_task()
    X, y = task.sample(args.n_train, random_state=args.data_seed)
    Xt, yt = task.sample(args.n_test, random_state=args.data_seed + 1)
    data = (X, y.astype(float), Xt, yt)
    bayes_acc = float(np.mean(task.bayes_predict(Xt) == yt))
    print(f"Dirichlet task on S^2: n_train={args.n_train}, n_test={args.n_test}, "
          f"Bayes test accuracy {bayes_acc:.3f}, {args.steps} GD steps, {args.dtype}")

    cells = [(args.width_depth, w) for w in args.widths]
    depth_widths = list(args.depth_widths) + ([max(args.widths)] if args.full else [])
    cells += [(d, w) for w in depth_widths for d in args.depths]
    cells = sorted(set(cells))

    rows: list[Row] = []
    header = (f"{'activation':>9} {'L':>3} {'width':>5} {'loss':>9} {'agree_t':>7} "
              f"{'agree_i':>7} {'relerr_t':>8} {'acc':>5} {'k_acc':>5} {'sec':>6}  status")
    print(header)
    for name in args.activations:
        act = ACTIVATIONS[name]()
        solutions: dict[int, KernelSolution] = {}
        for depth, width in cells:
            if depth not in solutions:
                K = ntk_matrix(act, depth, X, X)
                K_test = ntk_matrix(act, depth, Xt, X)
                solutions[depth] = sol = kernel_solution(K, K_test, data[1], args.steps)
                gap = np.mean(np.sign(sol.timed) == np.sign(sol.interpolant))
                print(f"{name:>9} {depth:>3} kernel: interpolant accuracy "
                      f"{np.mean(np.sign(sol.interpolant) == yt):.3f}, after {args.steps} "
                      f"steps {np.mean(np.sign(sol.timed) == yt):.3f} "
                      f"(agreement {gap:.3f})")
            for seed in range(args.seeds):
                r = run_network(name, act, depth, width, seed, data, solutions[depth], args,
                                bayes_acc)
                rows.append(r)
                print(f"{name:>9} {depth:>3} {width:>5} {r.train_loss:9.2e} {r.agree_timed:7.3f} "
                      f"{r.agree_interpolant:7.3f} {r.rel_error_timed:8.4f} {r.net_accuracy:5.3f} "
                      f"{r.kernel_accuracy:5.3f} {r.seconds:6.1f}  {r.status}", flush=True)

    kernel_depths = sorted(set(args.depths) | {64, 256})
    kernel_acc, kernel_cond = kernel_accuracies(task, args.activations, kernel_depths,
                                                args.kernel_n_train, Xt, yt, args.data_seed)
    print(f"\nNTK interpolant test accuracy with n_train={args.kernel_n_train} "
          f"(Bayes {bayes_acc:.3f}); condition number of K in brackets:")
    print(f"{'depth':>9} " + " ".join(f"{d:>15}" for d in kernel_depths))
    for name, acc in kernel_acc.items():
        print(f"{name:>9} " + " ".join(f"{a:6.3f} [{c:6.1e}]"
                                       for a, c in zip(acc, kernel_cond[name], strict=True)))

    csv_path = args.out / "finite_vs_infinite.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    with (args.out / "kernel_accuracy.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["activation", "quantity", "n_train",
                         *[f"depth_{d}" for d in kernel_depths]])
        for name, acc in kernel_acc.items():
            writer.writerow([name, "accuracy", args.kernel_n_train, *acc])
            writer.writerow([name, "condition", args.kernel_n_train, *kernel_cond[name]])
        writer.writerow(["bayes", "accuracy", args.kernel_n_train,
                         *[bayes_acc] * len(kernel_depths)])
    png_path = args.out / "finite_vs_infinite.png"
    plot(rows, png_path, bayes_acc, args.width_depth, kernel_depths, kernel_acc,
         args.kernel_n_train)
    print(f"wrote {csv_path} and {png_path}")
    return rows


if __name__ == "__main__":
    main()
