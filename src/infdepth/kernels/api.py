"""The cached kernel function of an activation, and the nngp / ntk convenience calls."""

from __future__ import annotations

from ..activations import Activation, check_informative, not_an_activation
from ..activations import activation as _activation
from .function import KernelFunction, check_depth, check_kind


def kernel_function(act, kind: str = "ntk", depth=1, *, architecture: str = "mlp",
                    branch_exponent: float = 0.5) -> KernelFunction:
    """The cached :class:`KernelFunction` of an activation (name or Activation).

    ``architecture="resnet"`` gives the residual network's kernel with branches scaled
    by L^-branch_exponent (:class:`infdepth.resnet.ResNetKernelFunction`, docs/resnet.md).
    """
    act = _activation(act) if isinstance(act, str) else act
    if not isinstance(act, Activation):
        raise TypeError(not_an_activation(act))
    from ..resnet import check_architecture, check_branch_exponent, resnet_kernel_function

    act = check_informative(act)
    kind, depth = check_kind(kind), check_depth(depth)
    gamma = check_branch_exponent(branch_exponent)
    if check_architecture(architecture) == "resnet":
        return resnet_kernel_function(act, kind, depth, gamma)
    key = (kind, depth)
    table = act._cache.get(key)
    if table is None:
        table = KernelFunction(act, kind, depth)
        act._cache[key] = table
    return table


def nngp(xi, activation, depth, *, log: bool = False, architecture: str = "mlp",
         branch_exponent: float = 0.5):
    """Normalized NNGP S_L(xi) of depth L (L = math.inf: the Koenigs limit h).

    Parameters
    ----------
    xi : array_like
        Inner products in [-1, 1].
    activation : str or Activation
    depth : int or math.inf
    log : bool
        Return ``(sign, log|S_L|)`` instead of values (never under- or overflows).
    architecture : {"mlp", "resnet"}
        ``"resnet"``: q_L(x, z) / q_L(x, x) of the residual network (docs/resnet.md).
    branch_exponent : float
        ResNet branches are scaled by L^-branch_exponent (default 1/2).
    """
    k = kernel_function(activation, "nngp", depth, architecture=architecture,
                        branch_exponent=branch_exponent)
    return k.log(xi) if log else k(xi)


def ntk(xi, activation, depth, *, log: bool = False, architecture: str = "mlp",
        branch_exponent: float = 0.5):
    """Normalized NTK K_L(xi) / K_L(1) of depth L (L = math.inf: the same limit h).

    See :func:`nngp` for the parameters (ResNet: (Theta_L + q_L) normalized at xi = 1).
    """
    k = kernel_function(activation, "ntk", depth, architecture=architecture,
                        branch_exponent=branch_exponent)
    return k.log(xi) if log else k(xi)
