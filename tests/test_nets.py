"""Finite networks in PyTorch (infdepth.nets, infdepth.torch_activations).

The infinite-width references are computed here by the literal depth recursion of
docs/theory.md section 3 from ``Activation.dual`` / ``dual_derivative``, independently of the
kernel engine (which is compared with it separately when it is importable).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from infdepth import Activation, activation
from infdepth.nets import (
    MLP,
    Centered,
    NetworkClassifier,
    empirical_nngp,
    empirical_ntk,
    ntk_top_eigenvalue,
    to_sphere,
    train,
)
from infdepth.torch_activations import HermiteSeries, to_torch

DESIGNED = Activation.from_dual_coefficients([0, 0.5, 0, 0.5])  # dual xi/2 + xi^3/2, alpha 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matrices: thread start-up would dominate (and vary with machine load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def brute_force(act: Activation, xi: np.ndarray, depth: int):
    """(S_L, K_L, first-layer term of K_L) by the literal recursion, un-normalized."""
    s, k, first = xi.copy(), xi.copy(), xi.copy()
    for _ in range(depth):
        slope = act.dual_derivative(s)
        k = act.dual(s) + k * slope
        first = first * slope
        s = act.dual(s)
    return s, k, first


def sphere(n: int, d: int = 3, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def gram(x: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
    return np.clip(x @ (x if z is None else z).T, -1.0, 1.0)


def relative(a, b) -> float:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def loglog_slope(widths, errors) -> float:
    return float(np.polyfit(np.log(widths), np.log(errors), 1)[0])


# ----------------------------------------------------------------------------- activations
BUILTINS = [
    ("relu", {}), ("abs", {}), ("leaky_relu", {"slope": 0.1}), ("leaky_relu", {"slope": -0.5}),
    ("erf", {}), ("erf", {"scale": 2.5}), ("sin", {}), ("sin", {"frequency": -1.7}),
    ("sine_family", {"a": 2.676}), ("hermite", {"degree": 4}), ("tanh", {}), ("sigmoid", {}),
    ("gelu", {}), ("silu", {}), ("softplus", {}),
]
ALL = [activation(name, **params) for name, params in BUILTINS] + [
    DESIGNED,
    Activation.from_dual_coefficients([0.1, 0.2, 0.3, 0.0, 0.25, 0.15]),
    Activation.from_callable(lambda x: x / (1 + abs(x)), name="softsign"),
]


@pytest.mark.parametrize("act", ALL, ids=lambda a: a.name)
def test_torch_activation_matches_numpy(act):
    x = np.linspace(-12, 12, 4001)
    module = act.torch()
    assert isinstance(module, torch.nn.Module)
    expected = act(x)
    got = module(torch.tensor(x, dtype=torch.float64))
    assert got.dtype == torch.float64
    err = np.abs(got.numpy() - expected) / np.maximum(1.0, np.abs(expected))
    assert err.max() <= 1e-12
    got32 = module(torch.tensor(x, dtype=torch.float32))
    assert got32.dtype == torch.float32
    err32 = np.abs(got32.double().numpy() - expected) / np.maximum(1.0, np.abs(expected))
    assert err32.max() <= 1e-5


@pytest.mark.parametrize("act", ALL, ids=lambda a: a.name)
def test_torch_activation_is_differentiable(act):
    module = to_torch(act)
    x = torch.linspace(-3.05, 2.95, 41, dtype=torch.float64, requires_grad=True)  # avoids 0
    assert torch.autograd.gradcheck(module, (x,))
    # E[phi'(u)^2] = dual'(1): checks the derivative's scale against the dual.
    if act.name in {"relu", "abs"} or act.name.startswith("leaky"):
        return  # kinked: the quadrature below is inaccurate; dual'(1) is checked by the NTK
    # Trapezoid rule on a fine grid: spectrally accurate for smooth Gaussian integrands.
    u = torch.linspace(-14, 14, 28001, dtype=torch.float64, requires_grad=True)
    w = np.exp(-u.detach().numpy() ** 2 / 2) / math.sqrt(2 * math.pi) * 1e-3
    (grad,) = torch.autograd.grad(module(u).sum(), u)
    moment = float(np.sum(w * grad.numpy() ** 2))
    # softsign has a kink in phi', so its numerically computed Hermite dual' converges slowly.
    tolerance = 1e-3 if act.name == "softsign" else 1e-6
    assert moment == pytest.approx(act.slope_at_one, rel=tolerance)


@pytest.mark.parametrize("act", ALL[:-1], ids=lambda a: a.name)  # the last is a lambda
def test_torch_activation_pickles(act):
    import pickle

    module = pickle.loads(pickle.dumps(act.torch()))
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)
    np.testing.assert_allclose(module(x).numpy(), act(x.numpy()), rtol=1e-13, atol=1e-15)


def test_hermite_series_module_agrees_with_recurrence_in_numpy():
    coefficients = np.sqrt([0.2, 0.0, 0.5, 0.0, 0.0, 0.3])
    module = HermiteSeries(coefficients)
    x = np.linspace(-5, 5, 11)
    he = np.polynomial.hermite_e.hermeval(x, coefficients / np.sqrt(
        [math.factorial(k) for k in range(6)]))
    np.testing.assert_allclose(module(torch.tensor(x)).numpy(), he, rtol=1e-13, atol=1e-13)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_activation_on_cuda():
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    for act in ALL:
        module = act.torch().to("cuda")
        torch.testing.assert_close(module(x.cuda()).cpu(), module(x), rtol=1e-12, atol=1e-12)


def test_callable_that_numpy_only_raises_clear_error():
    numpy_only = Activation.from_callable(np.tanh, name="numpy_tanh")
    with pytest.raises(ValueError, match="cannot be expressed in torch"):
        numpy_only.torch()
    with pytest.raises(ValueError, match="from_dual_coefficients"):
        to_torch(numpy_only)
    with pytest.raises(ValueError, match="cannot be expressed in torch"):
        MLP(3, 8, 2, numpy_only)
    # ... unless a torch implementation of the same raw function is supplied:
    module = to_torch(numpy_only, function=torch.tanh)
    x = np.linspace(-4, 4, 81)
    np.testing.assert_allclose(module(torch.tensor(x)).numpy(), numpy_only(x), rtol=1e-13)
    with pytest.raises(ValueError, match="does not reproduce"):
        to_torch(numpy_only, function=torch.sin)


def test_torch_builder_is_used_and_checked():
    act = activation("relu")
    act.torch_builder = lambda: torch.nn.ReLU()  # not normalized: rejected
    with pytest.raises(ValueError, match="does not reproduce"):
        to_torch(act)
    act.torch_builder = lambda: (lambda x: math.sqrt(2) * torch.relu(x))
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(to_torch(act)(torch.tensor(x)).numpy(), act(x), rtol=1e-15)


# ----------------------------------------------------------------------------- MLP
@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 0}, {"depth": 0}, {"width": -3}, {"depth": 2.5}, {"width": True},
        {"in_features": 0}, {"out_features": 0}, {"parameterization": "mup"},
    ],
)
def test_mlp_rejects_bad_arguments(kwargs):
    args = {"in_features": 3, "width": 8, "depth": 2} | kwargs
    with pytest.raises(ValueError):
        MLP(**args)


def test_mlp_shapes_seeds_dtypes_and_parameterizations():
    x = torch.tensor(sphere(5))
    a = MLP(3, 16, 3, "erf", generator=7, dtype=torch.float64)
    b = MLP(3, 16, 3, "erf", generator=7, dtype=torch.float64)
    c = MLP(3, 16, 3, "erf", generator=8, dtype=torch.float64)
    assert a(x).shape == (5, 1)
    assert torch.equal(a(x), b(x)) and not torch.equal(a(x), c(x))
    assert len(list(a.parameters())) == 4  # depth + 1 weight matrices, no biases
    single = MLP(3, 16, 3, "erf", generator=7)  # float32 draws the same weights, rounded
    torch.testing.assert_close(single(x.float()).double(), a(x), rtol=1e-5, atol=1e-5)
    # Standard parameterization: the same function at initialization.
    std = MLP(3, 16, 3, "erf", parameterization="standard", generator=7, dtype=torch.float64)
    torch.testing.assert_close(std(x), a(x), rtol=1e-13, atol=1e-13)
    wide = MLP(3, 4, 1, "relu", out_features=3, bias=True, dtype=torch.float64)
    assert wide(x).shape == (5, 3) and len(list(wide.parameters())) == 4


def test_engine_matches_brute_force_reference():
    from infdepth import kernels

    xi = np.linspace(-1, 1, 41)
    for act in [activation("relu"), DESIGNED]:
        for depth in [1, 4]:
            s, k, _ = brute_force(act, xi, depth)
            norm = sum(act.slope_at_one**i for i in range(depth + 1))
            np.testing.assert_allclose(kernels.nngp(xi, act, depth), s, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(norm * kernels.ntk(xi, act, depth), k, rtol=1e-9,
                                       atol=1e-12)


WIDTHS = [64, 256, 1024]


@pytest.mark.parametrize(
    ("act", "depth", "widths"),
    [
        (activation("relu"), 3, WIDTHS),
        (activation("sine_family", a=2.676), 3, WIDTHS),
        # The cubic Hermite design has heavy-tailed finite-width fluctuations that compound
        # with depth (NTK error ~0.5 at depth 2 and ~3 at depth 3 for width 1024), so it is
        # checked at depth 1, where wider networks are cheap.
        (DESIGNED, 1, [256, 1024, 4096]),
    ],
    ids=["relu-L3", "sine-L3", "designed-L1"],
)
def test_empirical_ntk_and_nngp_converge_like_inverse_sqrt_width(act, depth, widths):
    x = sphere(10)
    s, k, _ = brute_force(act, gram(x), depth)
    assert k[0, 0] == pytest.approx(sum(act.slope_at_one**i for i in range(depth + 1)))
    ntk_errors, nngp_errors = [], []
    for width in widths:
        e_ntk, e_nngp = [], []
        for seed in range(3):
            net = MLP(3, width, depth, act, generator=seed, dtype=torch.float64)
            e_ntk.append(relative(empirical_ntk(net, x), k))
            e_nngp.append(relative(empirical_nngp(net, x), s))
        ntk_errors.append(np.mean(e_ntk))
        nngp_errors.append(np.mean(e_nngp))
    print(f"\n{act.name} depth {depth}, widths {widths}: NTK errors {np.round(ntk_errors, 4)} "
          f"slope {loglog_slope(widths, ntk_errors):.3f}; NNGP errors "
          f"{np.round(nngp_errors, 4)} slope {loglog_slope(widths, nngp_errors):.3f}")
    for errors in (ntk_errors, nngp_errors):
        assert errors[0] > errors[1] > errors[2]
        assert errors[2] < 0.15
        assert -0.8 <= loglog_slope(widths, errors) <= -0.3


def test_standard_parameterization_ntk_scales_with_width():
    act, depth = activation("relu"), 2
    x = sphere(8, seed=3)
    _, k, first = brute_force(act, gram(x), depth)
    target = k - first  # the first layer's gradient is not amplified by the width
    errors = []
    for width in [64, 1024]:
        net = MLP(3, width, depth, act, parameterization="standard", generator=0,
                  dtype=torch.float64)
        errors.append(relative(empirical_ntk(net, x) / width, target))
    assert errors[1] < errors[0] and errors[1] < 0.1


def test_output_covariance_over_seeds_approaches_nngp():
    act, depth, draws = activation("relu"), 2, 1500
    x = sphere(5, seed=1)
    s, _, _ = brute_force(act, gram(x), depth)
    xt = torch.tensor(x)
    errors = []
    for width in [2, 8, 32]:
        net = MLP(3, width, depth, act, dtype=torch.float64)
        samples = []
        with torch.no_grad():
            for seed in range(draws):
                net.reset_parameters(seed)  # an independent network per seed
                samples.append(net(xt)[:, 0])
        f = torch.stack(samples).numpy()
        errors.append(relative(f.T @ f / draws, s))  # the mean is exactly 0 by symmetry
    print(f"\noutput covariance over {draws} seeds, widths 2, 8, 32: {np.round(errors, 4)}")
    # Finite-width bias O(1/width) on top of a Monte Carlo floor ~ sqrt(2 / draws).
    assert errors[0] > errors[2] and errors[0] > 2 * errors[2]
    assert errors[2] < 0.08


def test_empirical_ntk_blocks_outputs_and_top_eigenvalue():
    x, z = sphere(7, seed=4), sphere(5, seed=5)
    net = MLP(3, 32, 2, "erf", out_features=2, generator=0, dtype=torch.float64)
    full = empirical_ntk(net, x)
    assert full.shape == (7, 7, 2, 2)
    torch.testing.assert_close(empirical_ntk(net, x, batch_size=3), full)
    torch.testing.assert_close(full, full.permute(1, 0, 3, 2))
    cross = empirical_ntk(net, x, z, batch_size=2)
    assert cross.shape == (7, 5, 2, 2)
    joint = empirical_ntk(net, np.vstack([x, z]))
    torch.testing.assert_close(cross, joint[:7, 7:])
    matrix = full.permute(0, 2, 1, 3).reshape(14, 14)
    top = float(torch.linalg.eigvalsh(matrix)[-1])
    assert ntk_top_eigenvalue(net, x, rtol=1e-10) == pytest.approx(top, rel=1e-7)
    # Centering leaves the gradients, hence the NTK, unchanged and starts at f = 0.
    centered = Centered(net)
    assert torch.all(centered(torch.tensor(x)) == 0)
    torch.testing.assert_close(empirical_ntk(centered, x), full)


def test_trained_network_approaches_kernel_interpolant():
    act, depth = activation("relu"), 2
    x, x_test = sphere(12, seed=10), sphere(40, seed=11)
    y = np.sign(x[:, 0] + 0.3 * x[:, 1])
    _, k_train, _ = brute_force(act, gram(x), depth)
    _, k_test, _ = brute_force(act, gram(x_test, x), depth)
    interpolant = k_test @ np.linalg.solve(k_train, y)
    errors = []
    for width in WIDTHS:
        e = []
        for seed in range(2):
            net = Centered(MLP(3, width, depth, act, generator=seed, dtype=torch.float64))
            result = train(net, x, y, steps=1500, target_loss=1e-5, seed=seed, progress=False)
            assert result.final_loss < 1e-4
            with torch.no_grad():
                e.append(relative(net(torch.tensor(x_test))[:, 0], interpolant))
        errors.append(np.mean(e))
    print(f"\ntrained vs kernel interpolant, widths {WIDTHS}: {np.round(errors, 4)} slope "
          f"{loglog_slope(WIDTHS, errors):.3f}")
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.08
    assert -0.8 <= loglog_slope(WIDTHS, errors) <= -0.2


def test_train_is_deterministic_and_follows_its_contract():
    x = sphere(12, seed=2)
    y = np.sign(x[:, 2])

    def run(**kwargs):
        net = Centered(MLP(3, 64, 2, "relu", generator=0, dtype=torch.float64))
        return net, train(net, x, y, progress=False, **kwargs)

    net_a, a = run(steps=50, target_loss=0.0)
    net_b, b = run(steps=50, target_loss=0.0)
    assert a.steps == 50 and not a.converged and a.losses.size == 51
    for p, q in zip(net_a.parameters(), net_b.parameters(), strict=True):
        assert torch.equal(p, q)
    top = ntk_top_eigenvalue(MLP(3, 64, 2, "relu", generator=0, dtype=torch.float64), x) / 12
    assert a.lr == pytest.approx(1.9 / top, rel=1e-4)
    assert a.losses[0] == pytest.approx(0.5)  # centered: f = 0, targets +-1
    assert a.final_loss < 1e-2 * a.losses[0]
    _, stopped = run(steps=10_000, target_loss=1e-3)
    assert stopped.converged and stopped.final_loss <= 1e-3 and stopped.steps < 10_000
    _, fixed = run(steps=5, lr=0.01, target_loss=0.0)
    assert fixed.lr == 0.01
    _, sgd = run(steps=300, batch_size=4, target_loss=0.0, seed=3)
    _, sgd_again = run(steps=300, batch_size=4, target_loss=0.0, seed=3)
    assert sgd.final_loss < 0.05 * sgd.losses[0]
    assert sgd.final_loss == sgd_again.final_loss
    assert sgd.loss_steps[1] == 3  # evaluated once per epoch of 12 / 4 batches
    with pytest.raises(FloatingPointError, match="diverged"):
        run(steps=100, lr=1e3)
    with pytest.raises(ValueError):
        run(steps=-1)
    with pytest.raises(ValueError):
        run(lr_factor=2.5)


# ----------------------------------------------------------------------------- estimator
@pytest.mark.filterwarnings("ignore:training stopped")
def test_network_classifier_binary_and_multiclass():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.where(X[:, 0] > 0, "right", "left")
    clf = NetworkClassifier(width=64, depth=2, max_steps=200, target_loss=1e-2, random_state=0)
    assert clone(clf).get_params() == clf.get_params()
    with pytest.raises(NotFittedError):
        clf.predict(X)
    clf.fit(X, y)
    assert list(clf.classes_) == ["left", "right"] and clf.n_features_in_ == 2
    result = clf.train_result_
    assert clf.lr_ == result.lr > 0 and clf.n_iter_ == result.steps > 0
    assert result.final_loss < 0.1 * result.losses[0]
    assert clf.decision_function(X).shape == (40,)
    assert clf.score(X, y) >= 0.95
    again = clone(clf).fit(X, y)
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :1])

    labels = np.digitize(X[:, 0], [-0.5, 0.5])
    multi = NetworkClassifier(activation=DESIGNED, width=64, depth=2, max_steps=200,
                              target_loss=1e-2, random_state=1, dtype="float64").fit(X, labels)
    assert multi.decision_function(X).shape == (40, 3)
    assert multi.score(X, labels) >= 0.9

    with pytest.raises(ValueError):
        NetworkClassifier(width=0).fit(X, y)
    with pytest.raises(ValueError):
        NetworkClassifier(depth=0).fit(X, y)
    with pytest.raises(ValueError, match="cannot be expressed in torch"):
        NetworkClassifier(activation=Activation.from_callable(np.sin)).fit(X, y)


@pytest.mark.filterwarnings("ignore:training stopped")
def test_network_classifier_matches_kernel_classifier_when_wide():
    act, depth = activation("relu"), 2
    rng = np.random.default_rng(5)
    X, X_test = rng.normal(size=(20, 2)), rng.normal(size=(200, 2))
    y = np.where(X[:, 0] * X[:, 1] > 0, 1, -1)
    z, z_test = to_sphere(X), to_sphere(X_test)
    assert np.allclose(np.linalg.norm(z, axis=1), 1)
    _, k_train, _ = brute_force(act, gram(z), depth)
    _, k_test, _ = brute_force(act, gram(z_test, z), depth)
    kernel_sign = np.sign(k_test @ np.linalg.solve(k_train, y))
    clf = NetworkClassifier(act, width=512, depth=depth, max_steps=600, target_loss=1e-4,
                            random_state=0, dtype="float64").fit(X, y)
    agreement = np.mean(np.sign(clf.decision_function(X_test)) == kernel_sign)
    print(f"\nwidth-512 sign agreement with the NTK classifier: {agreement:.3f}")
    assert agreement >= 0.9
