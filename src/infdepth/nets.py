"""Finite wide-and-deep networks in PyTorch whose infinite-width limits are the engine's kernels.

Conventions (docs/theory.md sections 1 and 3). Inputs x are unit vectors, xi = <x, z>. An
:class:`MLP` of depth L (L hidden layers) and width k in the NTK parameterization is

    h_1 = W_1 x,   h_{l+1} = W_{l+1} phi(h_l) / sqrt(k)  (l = 1..L-1),
    f(x) = W_{L+1} phi(h_L) / sqrt(k),

with every weight entry N(0, 1) and phi the normalized activation (E[phi(u)^2] = 1).
The first layer has no 1/sqrt(d) factor: a unit input already has E[(w.x)^2] = ||x||^2 = 1,
so Cov(h_1(x), h_1(z)) = xi (equivalently, weights N(0, 1/d) acting on sqrt(d) x). Each
later pre-activation has covariance dual(previous) as k -> infinity, so

* the NNGP of f is S_L(xi)   (S_0 = xi, S_{l+1} = dual(S_l)), with S_L(1) = 1;
* the NTK of f is K_L(xi)    (K_0 = xi, K_{l+1} = dual(S_l) + K_l dual'(S_l)),
  un-normalized: K_L(1) = sum_{i=0}^{L} m^i, m = dual'(1);

i.e. ``infdepth.nngp(xi, act, L)`` and ``K_L(1) * infdepth.ntk(xi, act, L)``.

Training minimizes the squared loss L(theta) = (1 / 2n) sum_i ||f(x_i) - y_i||^2 by
gradient descent; in the infinite-width limit the outputs then follow
df/dt = -(eta / n) Theta (f - y), and a network *centered* at initialization
(f - f_0, see :class:`Centered`) converges to the kernel interpolant
k(x)^T K^{-1} y with the NTK. PyTorch is needed only here (the ``torch`` extra).
"""

from __future__ import annotations

import copy
import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp, vmap

from .activations import Activation
from .activations import activation as _activation
from .torch_activations import to_torch

__all__ = [
    "Dense",
    "MLP",
    "ResNet",
    "Centered",
    "empirical_ntk",
    "empirical_nngp",
    "ntk_top_eigenvalue",
    "train",
    "TrainResult",
    "NetworkClassifier",
    "to_sphere",
]

PARAMETERIZATIONS = ("ntk", "standard")


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _as_generator(generator: torch.Generator | int | None) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(int(generator))
    raise ValueError(f"generator must be a torch.Generator, an int seed or None, not {generator!r}")


class Dense(nn.Module):
    """Linear layer ``y = multiplier * x W^T (+ b)`` with ``W_ij ~ N(0, init_std^2)``.

    NTK parameterization: ``init_std = 1`` and ``multiplier = 1/sqrt(fan_in)``; standard
    parameterization: ``init_std = 1/sqrt(fan_in)`` and ``multiplier = 1``. Biases, when
    present, start at zero (so they do not change the NNGP).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        multiplier: float = 1.0,
        init_std: float = 1.0,
        bias: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.multiplier, self.init_std = float(multiplier), float(init_std)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw W (in float64 on the CPU, so a seed gives the same network everywhere)."""
        w = torch.randn(self.weight.shape, generator=generator, dtype=torch.float64)
        with torch.no_grad():
            self.weight.copy_(w * self.init_std)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = nn.functional.linear(x, self.weight)
        if self.multiplier != 1.0:
            y = y * self.multiplier
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"multiplier={self.multiplier:.4g}, init_std={self.init_std:.4g}, "
            f"bias={self.bias is not None}"
        )


class MLP(nn.Module):
    """Fully connected network of depth L whose infinite-width NNGP/NTK are S_L and K_L.

    Parameters
    ----------
    in_features : int
        Input dimension d. Inputs should be unit vectors (see :func:`to_sphere`).
    width : int
        Hidden width k >= 1.
    depth : int
        Number of hidden layers L >= 1 (L + 1 weight matrices).
    activation : str or Activation
        The activation; it is normalized (E[phi(u)^2] = 1) and run through
        :func:`~infdepth.torch_activations.to_torch`.
    parameterization : {"ntk", "standard"}
        ``"ntk"``: W ~ N(0, 1) entries, layer outputs multiplied by 1/sqrt(fan_in)
        (1 for the first layer, which acts on unit vectors). As k -> infinity the
        output at initialization is a GP with covariance S_L(xi) and the NTK tends to
        K_L(xi), K_L(1) = sum_{i<=L} dual'(1)^i.
        ``"standard"``: W ~ N(0, 1/fan_in) with no multipliers: the same function at
        initialization (same NNGP), but gradients of layers 2..L+1 are sqrt(k) larger,
        so the NTK grows like k: Theta / k -> K_L(xi) - xi prod_{l<L} dual'(S_l(xi)),
        the NTK without its first-layer term. The automatic learning rate of
        :func:`train` (1.9 / top eigenvalue) absorbs the factor k.
    out_features : int
        Number of outputs (one per class for one-hot targets).
    bias : bool
        Add zero-initialized biases to every layer. The NNGP is unchanged, but the
        NTK then gains the bias-gradient terms and no longer equals K_L; the
        package's convention is instead a bias *coordinate* appended to the input
        before projecting to the sphere.
    generator : torch.Generator or int, optional
        Source (or seed) of the initial weights; default: the global torch RNG.
    device, dtype
        Factory arguments, as for ``torch.nn.Linear``.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        activation: str | Activation = "relu",
        parameterization: str = "ntk",
        out_features: int = 1,
        bias: bool = False,
        *,
        generator: torch.Generator | int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features = _check_positive_int(in_features, "in_features")
        self.width = _check_positive_int(width, "width")
        self.depth = _check_positive_int(depth, "depth")
        self.out_features = _check_positive_int(out_features, "out_features")
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}"
            )
        self.parameterization = parameterization
        self.activation = _activation(activation)
        self.phi = to_torch(self.activation)
        generator = _as_generator(generator)

        def dense(fan_in: int, fan_out: int, scale: float) -> Dense:
            ntk = parameterization == "ntk"
            return Dense(fan_in, fan_out, multiplier=scale if ntk else 1.0,
                         init_std=1.0 if ntk else scale, bias=bias, device=device, dtype=dtype,
                         generator=generator)

        # Layers are drawn in order, exactly as reset_parameters() redraws them.
        hidden_scale = 1.0 / math.sqrt(self.width)
        self.hidden = nn.ModuleList(
            [dense(self.in_features, self.width, 1.0)]
            + [dense(self.width, self.width, hidden_scale) for _ in range(self.depth - 1)]
        )
        self.readout = dense(self.width, self.out_features, hidden_scale)

    def reset_parameters(self, generator: torch.Generator | int | None = None) -> None:
        """Redraw all weights (layer by layer, from ``generator`` or the global RNG)."""
        generator = _as_generator(generator)
        for layer in [*self.hidden, self.readout]:
            layer.reset_parameters(generator)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last hidden representation phi(h_L(x)), shape (n, width)."""
        h = self.hidden[0](x)
        for layer in self.hidden[1:]:
            h = layer(self.phi(h))
        return self.phi(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x), shape (n, out_features), for x of shape (n, in_features)."""
        return self.readout(self.features(x))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, width={self.width}, depth={self.depth}, "
            f"out_features={self.out_features}, activation={self.activation.name!r}, "
            f"parameterization={self.parameterization!r}"
        )


class ResNet(nn.Module):
    """Residual network whose infinite-width NNGP/NTK are the ResNet kernels (docs/resnet.md).

    NTK parameterization, every weight entry N(0, 1), inputs unit vectors::

        h_0 = U x,   h_l = h_{l-1} + beta_L W_l phi(h_{l-1}) / sqrt(k)  (l = 1..L),
        f(x) = v . h_L / sqrt(k),     beta_L = L^(-branch_exponent).

    As k -> infinity the output at initialization is a GP with covariance q_L(x, z) and
    the NTK (all of U, W_l, v trained) tends to Theta_L + q_L, i.e.
    ``resnet_diagonal(act, kind, L, gamma) * infdepth.nngp/ntk(xi, act, L,
    architecture="resnet", branch_exponent=gamma)`` (:func:`infdepth.resnet.resnet_diagonal`).

    Parameters
    ----------
    in_features, width : int
        Input dimension d and width k.
    depth : int
        Number of residual blocks L >= 1.
    activation : str or Activation
        Normalized activation (E[phi(u)^2] = 1).
    branch_exponent : float
        gamma >= 0 (default 1/2, the non-degenerate depth limit).
    out_features : int
    generator, device, dtype
        As for :class:`MLP`.
    """

    def __init__(
        self,
        in_features: int,
        width: int,
        depth: int,
        activation: str | Activation = "relu",
        branch_exponent: float = 0.5,
        out_features: int = 1,
        *,
        generator: torch.Generator | int | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        from .resnet import check_branch_exponent

        super().__init__()
        self.in_features = _check_positive_int(in_features, "in_features")
        self.width = _check_positive_int(width, "width")
        self.depth = _check_positive_int(depth, "depth")
        self.out_features = _check_positive_int(out_features, "out_features")
        self.branch_exponent = check_branch_exponent(branch_exponent)
        self.beta = float(self.depth) ** (-self.branch_exponent)
        self.activation = _activation(activation)
        self.phi = to_torch(self.activation)
        generator = _as_generator(generator)
        factory = {"device": device, "dtype": dtype, "generator": generator}
        scale = 1.0 / math.sqrt(self.width)
        self.input = Dense(self.in_features, self.width, 1.0, **factory)
        self.blocks = nn.ModuleList(
            [Dense(self.width, self.width, self.beta * scale, **factory)
             for _ in range(self.depth)]
        )
        self.readout = Dense(self.width, self.out_features, scale, **factory)

    def reset_parameters(self, generator: torch.Generator | int | None = None) -> None:
        """Redraw all weights (in order: input, blocks, readout)."""
        generator = _as_generator(generator)
        for layer in [self.input, *self.blocks, self.readout]:
            layer.reset_parameters(generator)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last residual stream h_L(x), shape (n, width)."""
        h = self.input(x)
        for block in self.blocks:
            h = h + block(self.phi(h))
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """f(x) = v . h_L(x) / sqrt(width), shape (n, out_features)."""
        return self.readout(self.features(x))

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, width={self.width}, depth={self.depth}, "
            f"out_features={self.out_features}, activation={self.activation.name!r}, "
            f"branch_exponent={self.branch_exponent:g}"
        )


class Centered(nn.Module):
    """``g(x) = f(x) - f_0(x)``: a network minus a frozen copy of itself at initialization.

    g starts at exactly 0, has the same gradients (hence the same NTK) as f, and in the
    infinite-width limit gradient descent on the squared loss takes it to the kernel
    interpolant Theta(x, X) Theta(X, X)^{-1} y with zero prior mean. Without centering
    the limit is f_0(x) + Theta(x, X) Theta^{-1} (y - f_0(X)): the same plus a Gaussian
    process sample that does not shrink with the width.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.reference = copy.deepcopy(model).requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f0 = self.reference(x)
        return self.model(x) - f0


# ----------------------------------------------------------------------------- kernels
def _trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    params = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("the model has no trainable parameters")
    return params


def _reference_tensor(model: nn.Module) -> torch.Tensor:
    return next(iter(model.parameters()))


def _as_input(model: nn.Module, X) -> torch.Tensor:
    ref = _reference_tensor(model)
    X = torch.as_tensor(X, dtype=ref.dtype, device=ref.device)
    if X.ndim != 2:
        raise ValueError(f"inputs must be a 2-D array (n_samples, n_features), got shape "
                         f"{tuple(X.shape)}")
    return X


def empirical_ntk(
    model: nn.Module, X, Z=None, *, batch_size: int | None = None, memory: int = 2**30
) -> torch.Tensor:
    """Finite-width NTK Theta(x, z) = sum_p df(x)/dp df(z)/dp over trainable parameters.

    Per-sample Jacobians come from ``torch.func`` (``vmap(jacrev(functional_call))``),
    computed ``batch_size`` samples at a time; by default all at once when they fit in
    ``memory`` bytes, else in chunks of half that (recomputed per block of the Gram
    matrix).

    Returns
    -------
    Tensor of shape (n, m) for one output, (n, m, c, c) for c outputs.
    """
    X = _as_input(model, X)
    Z = X if Z is None else _as_input(model, Z)
    params = _trainable(model)
    n_params = sum(p.numel() for p in params.values())

    def single(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, p, (x.unsqueeze(0),)).squeeze(0)

    jacobian = vmap(jacrev(single), in_dims=(None, 0))
    with torch.no_grad():
        n_out = single(params, X[:1][0]).numel()
    per_sample = n_params * n_out * X.element_size()
    if batch_size is None:
        n_rows = X.shape[0] + (0 if Z is X else Z.shape[0])
        batch_size = n_rows if n_rows * per_sample <= memory else max(1, memory // (2 * per_sample))

    def jac(rows: torch.Tensor) -> list[torch.Tensor]:
        j = jacobian(params, rows)
        return [v.reshape(rows.shape[0], n_out, -1) for v in j.values()]

    def starts(rows: torch.Tensor) -> range:
        return range(0, rows.shape[0], batch_size)

    same = Z is X
    # Jacobians of Z are kept when they fit in the budget, else recomputed per X chunk.
    keep = not same and Z.shape[0] * per_sample <= memory / 2
    z_cache = {j: jac(Z[j:j + batch_size]) for j in starts(Z)} if keep else {}
    out = torch.zeros(X.shape[0], Z.shape[0], n_out, n_out, dtype=X.dtype, device=X.device)
    for i in starts(X):
        jx = jac(X[i:i + batch_size])
        for j in (range(0, i + 1, batch_size) if same else starts(Z)):
            if same:
                jz = jx if j == i else jac(Z[j:j + batch_size])
            else:
                jz = z_cache[j] if keep else jac(Z[j:j + batch_size])
            block = sum(torch.einsum("aip,bjp->abij", a, b) for a, b in zip(jx, jz, strict=True))
            out[i:i + block.shape[0], j:j + block.shape[1]] = block
            if same and j != i:
                out[j:j + block.shape[1], i:i + block.shape[0]] = block.permute(1, 0, 3, 2)
    return out[..., 0, 0] if n_out == 1 else out


def empirical_nngp(model: MLP | ResNet, X, Z=None) -> torch.Tensor:
    """Finite-width NNGP: phi(h_L(x)) . phi(h_L(z)) / width, shape (n, m).

    This is the covariance of the output of ``model`` over its readout weights given
    the hidden layers (both parameterizations); it tends to S_L(xi) as width grows.
    For a :class:`ResNet` it is h_L(x) . h_L(z) / width, which tends to q_L(x, z).
    """
    if isinstance(model, Centered):
        model = model.model
    if not isinstance(model, (MLP, ResNet)):
        raise TypeError("empirical_nngp needs an infdepth.nets.MLP or ResNet")
    X = _as_input(model, X)
    Z = X if Z is None else _as_input(model, Z)
    with torch.no_grad():
        fx = model.features(X)
        fz = fx if Z is X else model.features(Z)
    return fx @ fz.T / model.width


def ntk_top_eigenvalue(
    model: nn.Module,
    X,
    *,
    iterations: int = 100,
    rtol: float = 1e-5,
    generator: torch.Generator | int | None = None,
) -> float:
    """Largest eigenvalue of the empirical NTK Gram matrix Theta(X, X) (all outputs).

    Power iteration on u -> J J^T u with a vector-Jacobian product (``torch.func.vjp``)
    and a Jacobian-vector product (``torch.func.jvp``): no Jacobian or Gram matrix is
    formed, so it scales to networks whose Jacobian does not fit in memory.
    """
    X = _as_input(model, X)
    params = _trainable(model)
    generator = _as_generator(generator)

    def f(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return functional_call(model, p, (X,))

    out, pullback = vjp(f, params)
    u = torch.ones_like(out) + 0.1 * torch.randn(
        out.shape, generator=generator, dtype=torch.float64).to(out)
    u = u / torch.linalg.vector_norm(u)
    value = 0.0
    for _ in range(iterations):
        (g,) = pullback(u)
        with warnings.catch_warnings():  # torch's own first-use jvp setup warns (torch 2.13)
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated",
                                    category=DeprecationWarning)
            _, v = jvp(f, (params,), (g,))
        new = float(torch.sum(u * v))
        norm = torch.linalg.vector_norm(v)
        if not torch.isfinite(norm) or norm == 0:
            raise FloatingPointError("the empirical NTK is zero or not finite on these inputs")
        u = v / norm
        if abs(new - value) <= rtol * abs(new):
            return new
        value = new
    return value


# ----------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    """What :func:`train` did.

    Attributes
    ----------
    lr : float
        Learning rate used.
    steps : int
        Number of parameter updates made.
    final_loss : float
        Full training loss (1/2n) sum_i ||f(x_i) - y_i||^2 at the end.
    converged : bool
        Whether ``final_loss <= target_loss``.
    losses : ndarray
        Full training loss at the evaluation steps ``loss_steps`` (every step for
        full-batch gradient descent, every epoch for mini-batch SGD).
    loss_steps : ndarray
        The step counts of ``losses``.
    """

    lr: float
    steps: int
    final_loss: float
    converged: bool
    losses: np.ndarray = field(repr=False)
    loss_steps: np.ndarray = field(repr=False)


def _squared_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.sum((out - target) ** 2) / out.shape[0]


def train(
    model: nn.Module,
    X,
    y,
    lr: float | None = None,
    steps: int = 10_000,
    target_loss: float = 1e-6,
    batch_size: int | None = None,
    seed: int | None = 0,
    progress: bool = True,
    *,
    lr_factor: float = 1.9,
) -> TrainResult:
    """Gradient descent on L(theta) = (1 / 2n) sum_i ||f(x_i) - y_i||^2, in place.

    Parameters
    ----------
    model : nn.Module
        Network mapping (n, d) inputs to (n, c) outputs (e.g. :class:`MLP` or
        :class:`Centered`); only parameters with ``requires_grad`` are trained. A
        :class:`Centered` model is trained as its inner network on targets y + f_0(X),
        which is the same loss at the cost of one network per step.
    X, y : array-like or Tensor
        Inputs (n, d) and targets (n,) or (n, c).
    lr : float, optional
        Step size. Default ``lr_factor / lambda_max(Theta / n)`` with Theta the
        empirical NTK Gram matrix of the training set: the linearized dynamics
        f <- f - (lr / n) Theta (f - y) are stable for lr < 2 / lambda_max(Theta / n).
        With ``batch_size`` the operator is Theta_B / |B| of a batch, and the largest
        eigenvalue over five random batches is used.
    steps : int
        Budget of parameter updates.
    target_loss : float
        Stop as soon as the full training loss is at most this.
    batch_size : int, optional
        Mini-batch SGD with batches drawn without replacement each epoch; default
        full-batch gradient descent.
    seed : int, optional
        Seeds batch order and the power iteration: training is deterministic given the
        model's initial weights and the seed.
    progress : bool
        Show a tqdm progress bar (if tqdm is installed).
    lr_factor : float
        Multiple of 1 / lambda_max used when ``lr`` is None (must be < 2 for stability).

    Returns
    -------
    TrainResult
    """
    X = _as_input(model, X)
    target = torch.as_tensor(y, dtype=X.dtype, device=X.device)
    if target.ndim == 1:
        target = target[:, None]
    if target.ndim != 2 or target.shape[0] != X.shape[0]:
        raise ValueError(f"targets of shape {tuple(target.shape)} do not match {X.shape[0]} inputs")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if isinstance(model, Centered):
        # ||f - f_0 - y||^2 = ||f - (y + f_0)||^2 on the training set: train the inner
        # network on shifted targets and save the frozen copy's forward pass at every step.
        with torch.no_grad():
            target = target + model.reference(X)
        model = model.model
    n = X.shape[0]
    if batch_size is not None:
        batch_size = min(_check_positive_int(batch_size, "batch_size"), n)
        if batch_size == n:
            batch_size = None
    generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

    if lr is None:
        if not 0 < lr_factor < 2:
            raise ValueError("lr_factor must lie in (0, 2) for stable gradient descent")
        if batch_size is None:
            top = ntk_top_eigenvalue(model, X, generator=generator) / n
        else:
            top = max(
                ntk_top_eigenvalue(model, X[torch.randperm(n, generator=generator)[:batch_size]],
                                   generator=generator) / batch_size
                for _ in range(5)
            )
        lr = lr_factor / top
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"learning rate must be positive and finite, got {lr}")

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=lr)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the progress extra is optional
        bar = None
    else:
        bar = tqdm(total=steps, disable=not progress, desc="training", leave=False)

    losses: list[float] = []
    loss_steps: list[int] = []
    epoch = n if batch_size is None else -(-n // batch_size)
    order = torch.arange(n)
    initial = None
    step = 0
    try:
        while True:
            full_batch = batch_size is None
            evaluate = full_batch or step % epoch == 0 or step == steps
            if evaluate:
                with torch.set_grad_enabled(full_batch and step < steps):
                    loss = _squared_loss(model(X), target)
                value = float(loss.detach())
                losses.append(value)
                loss_steps.append(step)
                initial = value if initial is None else initial
                if not math.isfinite(value) or value > 1e8 * max(initial, 1e-30):
                    raise FloatingPointError(
                        f"training diverged at step {step} (loss {value:.3g}); use a smaller "
                        "lr or lr_factor"
                    )
                if bar is not None and (step % max(1, steps // 200) == 0):
                    bar.set_postfix(loss=f"{value:.3e}", refresh=False)
                if value <= target_loss or step >= steps:
                    break
            if not full_batch:
                position = (step % epoch) * batch_size
                if position == 0:
                    order = torch.randperm(n, generator=generator)
                rows = order[position:position + batch_size].to(X.device)
                loss = _squared_loss(model(X[rows]), target[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    final = losses[-1]
    return TrainResult(lr=lr, steps=step, final_loss=final, converged=final <= target_loss,
                       losses=np.asarray(losses), loss_steps=np.asarray(loss_steps))


# ----------------------------------------------------------------------------- estimator
def to_sphere(X, bias_coordinate: float | None = 1.0) -> np.ndarray:
    """Rows of ``[X, bias_coordinate]`` divided by their Euclidean norm (unit vectors).

    With ``bias_coordinate=None`` no coordinate is appended (X is only normalized).
    """
    X = np.asarray(X, dtype=float)
    if bias_coordinate is not None:
        X = np.hstack([X, np.full((X.shape[0], 1), float(bias_coordinate))])
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ValueError("cannot project a zero (or non-finite) row onto the unit sphere")
    return X / norms


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class NetworkClassifier(ClassifierMixin, BaseEstimator):
    """A finite wide-and-deep network trained by gradient descent, as a classifier.

    Inputs are mapped to the unit sphere by :func:`to_sphere` (a coordinate
    ``bias_coordinate`` is appended, then x / ||x||). Binary targets become +-1 and the
    prediction is sign(f); multiclass targets become one-hot columns and the prediction
    is argmax_c f_c. With ``center=True`` the trained function is f - f_0 (see
    :class:`Centered`), which as width -> infinity is the NTK kernel interpolant
    k(x)^T K^{-1} y, the same classifier as a kernel machine with ``infdepth.ntk`` at
    the same depth.

    Parameters
    ----------
    activation : str or Activation
    width, depth : int
        Hidden width k and number of hidden layers L.
    parameterization : {"ntk", "standard"}
    lr : float, optional
        Step size; default 1.9 / lambda_max(Theta / n) (see :func:`train`).
    max_steps : int
        Budget of gradient steps.
    target_loss : float
        Stop once (1/2n) sum ||f(x_i) - y_i||^2 is at most this.
    batch_size : int, optional
        Mini-batch SGD instead of full-batch gradient descent.
    center : bool
        Train f - f_0 instead of f.
    bias_coordinate : float or None
        Appended before projecting to the sphere; None appends nothing.
    dtype : {"float32", "float64"}
    device : str
    random_state : int, RandomState or None
        Seeds the initial weights and the training.
    progress : bool
        tqdm bar while training.

    Attributes
    ----------
    classes_, n_features_in_, model_ (the trained module), train_result_
    (:class:`TrainResult`), lr_, n_iter_.
    """

    def __init__(
        self,
        activation: str | Activation = "relu",
        width: int = 512,
        depth: int = 2,
        parameterization: str = "ntk",
        lr: float | None = None,
        max_steps: int = 2000,
        target_loss: float = 1e-4,
        batch_size: int | None = None,
        center: bool = True,
        bias_coordinate: float | None = 1.0,
        dtype: str = "float32",
        device: str = "cpu",
        random_state=None,
        progress: bool = False,
    ) -> None:
        self.activation = activation
        self.width = width
        self.depth = depth
        self.parameterization = parameterization
        self.lr = lr
        self.max_steps = max_steps
        self.target_loss = target_loss
        self.batch_size = batch_size
        self.center = center
        self.bias_coordinate = bias_coordinate
        self.dtype = dtype
        self.device = device
        self.random_state = random_state
        self.progress = progress

    def _inputs(self, X) -> torch.Tensor:
        sphere = to_sphere(X, self.bias_coordinate)
        return torch.as_tensor(sphere, dtype=_DTYPES[self.dtype], device=self.device)

    def fit(self, X, y) -> NetworkClassifier:
        """Train a fresh network on (X, y)."""
        X, y = check_X_y(X, y)
        check_classification_targets(y)
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        self.n_features_in_ = X.shape[1]
        self.classes_, codes = np.unique(y, return_inverse=True)
        if self.classes_.size < 2:
            raise ValueError("need samples of at least two classes")
        if self.classes_.size == 2:
            targets = 2.0 * codes[:, None] - 1.0
        else:
            targets = np.eye(self.classes_.size)[codes]
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        inputs = self._inputs(X)
        model: nn.Module = MLP(
            inputs.shape[1], self.width, self.depth, self.activation,
            parameterization=self.parameterization, out_features=targets.shape[1],
            generator=seed, device=self.device, dtype=_DTYPES[self.dtype],
        )
        if self.center:
            model = Centered(model)
        result = train(
            model, inputs, targets, lr=self.lr, steps=self.max_steps,
            target_loss=self.target_loss, batch_size=self.batch_size, seed=seed,
            progress=self.progress,
        )
        if not result.converged:
            warnings.warn(
                f"training stopped after {result.steps} steps at loss {result.final_loss:.3g} "
                f"> target_loss={self.target_loss:g}; increase max_steps",
                RuntimeWarning, stacklevel=2,
            )
        self.model_ = model
        self.train_result_ = result
        self.lr_ = result.lr
        self.n_iter_ = result.steps
        return self

    def decision_function(self, X) -> np.ndarray:
        """f(x): shape (n,) for two classes (positive means classes_[1]), else (n, c)."""
        check_is_fitted(self, "model_")
        X = check_array(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but the classifier was fitted "
                             f"with {self.n_features_in_}")
        with torch.no_grad():
            out = self.model_(self._inputs(X)).to(torch.float64).cpu().numpy()
        return out[:, 0] if out.shape[1] == 1 else out

    def predict(self, X) -> np.ndarray:
        """sign(f) (two classes) or argmax_c f_c, mapped back to ``classes_``."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return self.classes_[index]
