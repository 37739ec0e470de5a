"""Finite PyTorch ResNets (infdepth.nets.ResNet) against the ResNet kernels.

The kernels are the independent computation here (themselves checked against mpmath in
tests/test_resnet.py); the networks are plain torch code. Finite-width fluctuations of
empirical kernels are O(width^-1/2), so the bounds are on fitted slopes over seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import infdepth
from infdepth.nets import ResNet, empirical_nngp, empirical_ntk
from infdepth.resnet import resnet_diagonal


def _data(n=6, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _kernel(kind, depth, X, act="relu"):
    fn = infdepth.ntk if kind == "ntk" else infdepth.nngp
    xi = np.clip(X @ X.T, -1, 1)
    return resnet_diagonal(act, kind, depth) * fn(xi, act, depth, architecture="resnet")


def _rms_error(kind, width, depth, X, seeds, ref, act="relu"):
    errors = []
    for seed in seeds:
        net = ResNet(X.shape[1], width, depth, act, generator=seed, dtype=torch.float64)
        K = empirical_ntk(net, X) if kind == "ntk" else empirical_nngp(net, X)
        errors.append(float(np.sqrt(np.mean((K.numpy() - ref) ** 2))))
    return float(np.mean(errors))


def test_resnet_module_shapes_and_init():
    net = ResNet(5, 16, 3, "erf", out_features=2, generator=0)
    X = torch.as_tensor(_data(), dtype=torch.float32)
    assert net(X).shape == (6, 2)
    assert net.beta == pytest.approx(3**-0.5)
    again = ResNet(5, 16, 3, "erf", out_features=2, generator=0)
    assert torch.equal(net(X), again(X))
    assert "branch_exponent=0.5" in repr(net)
    with pytest.raises(ValueError, match="branch_exponent"):
        ResNet(5, 16, 3, branch_exponent=-1)
    with pytest.raises(ValueError, match="depth"):
        ResNet(5, 16, 0)


@pytest.mark.parametrize("kind,widths,depth", [("nngp", (64, 128, 256, 512, 1024), 8),
                                                ("ntk", (32, 64, 128, 256), 4)])
def test_empirical_kernels_converge_like_width_to_minus_half(kind, widths, depth):
    X = _data()
    ref = _kernel(kind, depth, X)
    errors = [_rms_error(kind, w, depth, X, range(6), ref) for w in widths]
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    # CLT: slope -1/2; six seeds per width leave about +-0.2 of scatter
    assert -0.9 < slope < -0.25, (errors, slope)


def test_width_and_depth_together_reach_the_depth_infinity_kernel():
    """(width, L) = (64, 4) -> (1024, 16): the empirical NNGP of ResNets with 1/sqrt(L)
    branches approaches the depth-infinity ODE kernel (errors O(width^-1/2) + O(1/L))."""
    X = _data()
    ref = _kernel("nngp", math.inf, X)
    errors = [_rms_error("nngp", w, L, X, range(6), ref) for w, L in
              ((64, 4), (256, 8), (1024, 16))]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.35 * errors[0]
