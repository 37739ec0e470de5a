"""float32 Gram matrices and predictions, and the torch device backend, against float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infdepth import InfiniteNetworkClassifier, Kernel, SingularKernelClassifier, kernel_function


def sphere(rng, n, d):
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def near_copies(rng, X, scale):
    Z = X + scale * rng.standard_normal(X.shape)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


KERNELS = [("relu", "ntk", 10), ("erf", "ntk", 100), ("tanh", "nngp", math.inf)]


def vote_models(alpha):
    """Factories (keyword options -> estimator) of the two depth-infinity vote rules."""
    return (lambda **kw: InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf,
                                                   projection=None, **kw),
            lambda **kw: SingularKernelClassifier(alpha=alpha, projection=None, **kw))


@pytest.mark.parametrize("name, kind, depth", KERNELS)
def test_float32_gram_accuracy_and_exact_near_pairs(name, kind, depth):
    """float32 entries are within a few float32 ulps of the inner product's effect on the
    kernel; near-coincident pairs are float64 computations (to float32 rounding)."""
    rng = np.random.default_rng(0)
    X = sphere(rng, 300, 30)
    Z = np.vstack([near_copies(rng, X[:100], 1e-6), sphere(rng, 200, 30)])
    K64 = Kernel(name, kind, depth)(X, Z)
    K32 = Kernel(name, kind, depth, dtype="float32")(X, Z)
    assert K32.dtype == np.float32
    np.testing.assert_array_equal(np.isinf(K32), np.isinf(K64))
    # away from coincidence: error = |k'(xi)| * (float32 inner-product error), independently
    # bounded here by the kernel's change over +-4e-7 in xi (d = 30: ~ 30 ulps of float32)
    xi = np.clip(X @ Z.T, -1, 1)
    far = 1 - np.abs(xi) > Kernel.FLOAT32_NEAR_GAP
    fn = kernel_function(name, kind, depth)
    step = 4e-7
    lo, hi = fn(np.clip(xi[far] - step, -1, 1)), fn(np.clip(xi[far] + step, -1, 1))
    bound = np.abs(hi - lo) + 2e-7 * np.abs(K64[far])
    assert np.all(np.abs(K32[far].astype(float) - K64[far]) <= bound)
    # near pairs (the first 100 diagonal entries): float64 arithmetic, rounded to float32
    near = np.arange(100)
    got, ref = K32[near, near].astype(float), K64[near, near]
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=1.2e-7)
    # ... where the plain float32 inner product would be badly off
    xi32 = np.einsum("ij,ij->i", X[:100].astype(np.float32), Z[:100].astype(np.float32))
    plain = fn(np.clip(xi32.astype(float), -1, 1))
    assert np.max(np.abs(plain - ref) / np.abs(ref)) > 1e-4 or not np.all(finite)


def flip_data(rng, n_pairs=40, d=8):
    """Training pairs 2e-4 apart with opposite labels, and test points 1/3 of the way from
    the first to the second: the nearer training point (label 0) decides the singular vote,
    but float32 inner products cannot tell the two gaps (~1e-9 and ~4e-9) apart."""
    A = sphere(rng, n_pairs, d)
    B = near_copies(rng, A, 2e-4 / math.sqrt(d))
    T = A + (B - A) / 3
    T /= np.linalg.norm(T, axis=1, keepdims=True)
    far = sphere(rng, 2500, d)
    X = np.vstack([A, B, far])
    y = np.concatenate([np.zeros(n_pairs), np.ones(n_pairs), (far[:, 0] > 0).astype(float)])
    return X, y.astype(int), T, A, B


def test_float32_prediction_falls_back_to_float64_near_coincident_points():
    rng = np.random.default_rng(1)
    X, y, T, A, B = flip_data(rng)
    # float32 cannot order the two gaps of the test points: 1 - <t, a> and 1 - <t, b>
    gap_a = 1 - np.einsum("ij,ij->i", T.astype(np.float32), A.astype(np.float32))
    gap_b = 1 - np.einsum("ij,ij->i", T.astype(np.float32), B.astype(np.float32))
    assert np.mean(gap_a < gap_b) < 0.9  # float32 order is wrong or tied for many points
    for make in vote_models(alpha=7.0):
        ref = make().fit(X, y)
        fast = make(dtype="float32").fit(X, y)
        np.testing.assert_array_equal(ref.predict(T), 0)  # the nearer point's label
        np.testing.assert_array_equal(fast.predict(T), ref.predict(T))
        # and everywhere else the outputs agree to float32-level relative accuracy
        Q = sphere(rng, 300, X.shape[1])
        a, b = ref._outputs(Q), fast._outputs(Q)
        scale = np.max(np.abs(a), axis=1, keepdims=True)
        assert np.max(np.abs(a - b) / scale) < 1e-4
        np.testing.assert_array_equal(fast.predict(Q), ref.predict(Q))


def test_dtype_and_device_are_validated():
    X = np.eye(3)[:2]
    with pytest.raises(ValueError, match="dtype must be"):
        Kernel("relu", dtype="float16")(X)
    with pytest.raises(ValueError, match="'dtype' parameter .* among"):  # _parameter_constraints
        InfiniteNetworkClassifier(dtype="int8").fit([[0, 1], [1, 0]], [0, 1])
    with pytest.raises(ValueError, match="log=True"):
        Kernel("relu", dtype="float32")(X, log=True)
    pytest.importorskip("torch", reason="torch is part of the test extra")
    with pytest.raises(ValueError, match="device must name"):
        Kernel("relu", device="not-a-device")(X)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            SingularKernelClassifier(alpha=2.0, device="cuda").fit([[0, 1], [1, 0]], [0, 1])


def test_device_without_torch_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="infdepth\\[torch\\]"):
        Kernel("relu", device="cpu")(np.eye(2))


def _device_checks(device):
    rng = np.random.default_rng(2)
    X = sphere(rng, 200, 12)
    Z = np.vstack([near_copies(rng, X[:50], 1e-7), sphere(rng, 150, 12)])
    for name, kind, depth in KERNELS:
        ref = Kernel(name, kind, depth)(X, Z)
        got = Kernel(name, kind, depth, device=device)(X, Z)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        np.testing.assert_allclose(got[finite], ref[finite], rtol=1e-11, atol=1e-300)
        got32 = Kernel(name, kind, depth, device=device, dtype="float32")(X, Z)
        cpu32 = Kernel(name, kind, depth, dtype="float32")(X, Z)
        assert got32.dtype == np.float32
        # two float32 matrix products (torch's and numpy's) may round differently: compare
        # to 1e-4 relative, or 1e-6 of the row's largest entry near the kernel's zeros
        top = np.max(np.where(finite, np.abs(ref), 0), axis=1, keepdims=True)
        diff = np.abs(got32.astype(float) - cpu32)
        assert np.all((diff <= 1e-4 * np.abs(cpu32) + 1e-6 * top)[finite])
    X, y, T, _, _ = flip_data(rng, d=6)
    for dtype in ("float64", "float32"):
        for make in vote_models(alpha=5.0):
            ref = make().fit(X, y)
            dev = make(device=device, dtype=dtype).fit(X, y)
            np.testing.assert_array_equal(dev.predict(T), ref.predict(T))
            Q = sphere(rng, 100, X.shape[1])
            a, b = ref._outputs(Q), dev._outputs(Q)
            scale = np.max(np.abs(a), axis=1, keepdims=True)
            assert np.max(np.abs(a - b) / scale) < (1e-10 if dtype == "float64" else 1e-4)


def test_torch_backend_on_cpu_equals_numpy():
    """The torch backend's arithmetic, run on the CPU device (same code as on a GPU)."""
    pytest.importorskip("torch", reason="torch is part of the test extra")
    _device_checks("cpu")


def test_torch_backend_on_cuda_equals_numpy():
    torch = pytest.importorskip("torch", reason="torch is part of the test extra")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine (the CPU device runs the same code above)")
    _device_checks("cuda")


@pytest.mark.parametrize("options", [{}, {"dtype": "float32"}])
def test_empty_inputs_give_empty_gram_matrices(options):
    X = np.eye(3)
    assert Kernel("relu", **options)(np.empty((0, 3)), X).shape == (0, 3)
    assert Kernel("relu", **options)(X, np.empty((0, 3))).shape == (3, 0)
