"""Activation design (docs/theory.md section 5): requested alpha, checked against the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from infdepth import activation, kernel_function
from infdepth.activations import hermite_coefficients
from infdepth.design import (
    FAMILIES,
    design_activation,
    design_formula,
    polynomial_alpha,
    sine_alpha,
)
from infdepth.taxonomy import limit

_CACHE: dict = {}


def _design(**kwargs):
    key = tuple(sorted(kwargs.items()))
    if key not in _CACHE:
        _CACHE[key] = design_activation(**kwargs)
    return _CACHE[key]


def _log_h(act, d):
    """(sign, log h(1 - d)) from the engine, with 1 - xi = d given exactly."""
    return kernel_function(act, "nngp", math.inf).log(1.0 - d, delta=d, eps=2.0 - d)


def engine_alpha(act, delta=1e-10):
    """-2 x slope of log h against log(1 - xi), averaged over one log-period of P.

    The average of the local slope over one period [delta / m, delta] is the secant slope
    between its ends, where P takes the same value; computed here from the engine's
    depth-infinity kernel, independently of ``limit()``. 1 - xi is passed exactly (xi
    itself, 1 - 1e-10 in float64, carries 1 - xi only to ~1e-6 relative accuracy).
    """
    m = float(act.dual_function.slope_at_one)
    d = np.array([delta, delta / m])
    _, log_h = _log_h(act, d)
    return float(-2 * (log_h[0] - log_h[1]) / (math.log(d[0]) - math.log(d[1])))


def local_slope_oscillation(act, delta=1e-10, samples=64):
    """Spread of the pointwise local slope -2 dlog h / dlog(1 - xi) over one period."""
    m = float(act.dual_function.slope_at_one)
    log_d = math.log(delta) - np.linspace(0, math.log(m), samples + 1)
    _, log_h = _log_h(act, np.exp(log_d))
    slopes = -2 * np.diff(log_h) / np.diff(log_d)
    return float(slopes.min()), float(slopes.max()), float(slopes.mean())


POLYNOMIAL_TARGETS = [0.5, 1.0, 2.0, 3.0, 8.0]


@pytest.mark.parametrize("alpha", POLYNOMIAL_TARGETS)
def test_polynomial_design_hits_alpha(alpha):
    act = _design(alpha=alpha)
    record = limit(act)
    assert record.kind == "singular"
    assert abs(record.alpha - alpha) <= 1e-9
    assert abs(record.measured_alpha - alpha) <= 1e-3
    assert abs(engine_alpha(act) - alpha) <= 1e-3
    lo, hi, mean = local_slope_oscillation(act)
    assert abs(mean - alpha) <= 1e-3  # averaged over the period
    assert hi - lo < 1e-2 * alpha  # P is nearly flat for the default family
    # the default family has no antipodal singularity: even degree, dual(-1) = 2t - 1
    k, t = act.params["degree"], act.params["t"]
    assert k % 2 == 0
    assert record.dual_at_minus_one == pytest.approx(2 * t - 1, abs=1e-14)
    assert record.dual_at_minus_one > -1
    assert record.parity == 0
    # smallest even k with 2/(k - 1) < alpha (unless m would stay below 1.05)
    assert 2 / (k - 1) < alpha
    assert record.m == pytest.approx(1 + t * (k - 1), rel=1e-14)
    if k > 2:  # k - 2 was too small, or its design would have had m < 1.05
        assert 2 / (k - 3) >= alpha or design_activation(alpha=alpha, degree=k - 2).params[
            "t"] * (k - 3) < 0.05
    print(f"\nalpha={alpha}: {act.name}; limit alpha error {record.alpha - alpha:+.1e}, "
          f"engine alpha error {engine_alpha(act) - alpha:+.1e}, P oscillation "
          f"{record.oscillation:.2e}")


@pytest.mark.parametrize("alpha,a_paper", [(2.0, 2.676), (4.0, 6.13539), (8.0, 13.8258)])
def test_sine_design_hits_alpha(alpha, a_paper):
    act = _design(alpha=alpha, family="sine")
    a = act.params["a"]
    assert a == pytest.approx(a_paper, abs=1e-3)  # the paper's values, rounded
    record = limit(act)
    assert abs(record.alpha - alpha) <= 1e-9
    assert abs(engine_alpha(act) - alpha) <= 1e-3
    assert record.parity == -1  # the sine family is odd: singular at antipodes too
    assert record.c0 == pytest.approx(a / math.sinh(a), rel=1e-13)


def test_odd_polynomial_reproduces_paper_dual():
    act = _design(alpha=2.0, family="odd_polynomial")
    c = act.dual_function.coefficients
    np.testing.assert_allclose(c, [0, 0.5, 0, 0.5], atol=1e-15)  # xi/2 + xi^3/2
    act1 = _design(alpha=1.0, family="odd_polynomial", degree=7)
    np.testing.assert_allclose(act1.dual_function.coefficients[[1, 7]], [0.5, 0.5], atol=1e-12)


def test_dimension_means_alpha():
    a = _design(dimension=3)
    b = _design(alpha=3)
    np.testing.assert_array_equal(a.dual_function.coefficients, b.dual_function.coefficients)
    assert a.params["alpha"] == 3.0


def test_any_alpha_is_reachable():
    for alpha in (0.05, 0.3, 2 / 3 + 1e-6, 2.0 + 1e-9, 40.0, 110.0):
        act = design_activation(alpha=alpha)
        k, c0, t = act.params["degree"], act.params["c0"], act.params["t"]
        # independent formula: alpha = 2 log(1/c0) / log(1 + t (k - 1))
        assert 2 * math.log(1 / c0) / math.log(1 + t * (k - 1)) == pytest.approx(alpha, rel=1e-11)
        record = limit(act, oscillation=False)
        assert record.kind == "singular"
        assert abs(record.alpha - alpha) <= 1e-9 * max(1.0, alpha)


@pytest.mark.parametrize("family", ["polynomial", "odd_polynomial"])
def test_phi_has_the_designed_dual_by_quadrature(family):
    act = _design(alpha=1.0, family=family)
    # 1) Hermite coefficients of phi itself, by the package's Gaussian quadrature
    a, second_moment = hermite_coefficients(act.function, degree=40)
    c = act.dual_function.coefficients
    np.testing.assert_allclose(a[: c.size] ** 2, c, atol=1e-13)
    assert np.all(np.abs(a[c.size:]) < 1e-7)
    assert second_moment == pytest.approx(1.0, abs=1e-12)
    # 2) E[phi(u) phi(v)] for correlated normals, by 2-D Gauss-Hermite quadrature
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    U, V = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    for xi in (-0.9, -0.3, 0.4, 0.95):
        v = xi * U + math.sqrt(1 - xi * xi) * V
        value = float(np.sum(W * act(U) * act(v)))
        assert value == pytest.approx(float(act.dual(xi)), abs=1e-10)


def test_sine_phi_by_quadrature():
    act = _design(alpha=2.0, family="sine")
    x, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    U, V = np.meshgrid(x, x, indexing="ij")
    W = np.outer(w, w)
    for xi in (-0.5, 0.2, 0.9):
        v = xi * U + math.sqrt(1 - xi * xi) * V
        assert float(np.sum(W * act(U) * act(v))) == pytest.approx(
            float(act.dual(xi)), abs=1e-10
        )


def test_family_ranges():
    # polynomial: alpha -> 2/(k - 1) as t -> 0 and grows without bound as t -> 1
    for k in (2, 3, 4, 8):
        assert polynomial_alpha(-1e-9, k) == pytest.approx(2 / (k - 1), rel=1e-6)
        values = [polynomial_alpha(u, k) for u in np.linspace(-40, -1e-6, 200)]
        assert np.all(np.diff(values) < 0)  # monotone in log c0: brentq is well posed
    # sine: alpha(a) from 1 (a -> 0) upwards, monotone
    a = np.linspace(1e-3, 300, 2000)
    values = np.array([sine_alpha(x) for x in a])
    assert values[0] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(values) > 0)
    assert sine_alpha(2.0) == pytest.approx(
        2 * math.log(math.sinh(2.0) / 2.0) / math.log(2.0 / math.tanh(2.0)), rel=1e-14
    )


def test_formula_lines():
    act = _design(alpha=2.0)
    lines = design_formula(act)
    assert lines[0].startswith("dual(xi) = ")
    assert "He_4(x) / sqrt(4!)" in lines[1]
    sine = design_formula(_design(alpha=2.0, family="sine"))
    assert sine[0].startswith("dual(xi) = sinh(")


def test_bad_requests():
    with pytest.raises(ValueError, match="positive"):
        design_activation(alpha=0)
    with pytest.raises(ValueError, match="positive"):
        design_activation(alpha=-1.5)
    with pytest.raises(ValueError, match="positive"):
        design_activation(dimension=float("nan"))
    with pytest.raises(ValueError, match="positive"):
        design_activation(alpha=math.inf)
    with pytest.raises(ValueError, match="exactly one"):
        design_activation()
    with pytest.raises(ValueError, match="exactly one"):
        design_activation(alpha=2, dimension=2)
    with pytest.raises(ValueError, match="unknown family"):
        design_activation(alpha=2, family="cosine")
    with pytest.raises(ValueError, match="unreachable in the sine family"):
        design_activation(alpha=0.9, family="sine")
    with pytest.raises(ValueError, match="unreachable in the sine family"):
        design_activation(alpha=1.0, family="sine")
    with pytest.raises(ValueError, match="unreachable in the sine family"):
        design_activation(alpha=200, family="sine")
    with pytest.raises(ValueError, match="unreachable in the polynomial family"):
        design_activation(alpha=500)
    with pytest.raises(ValueError, match="unreachable with degree 4"):
        design_activation(alpha=0.5, degree=4)
    with pytest.raises(ValueError, match="even degree"):
        design_activation(alpha=2, degree=3)
    with pytest.raises(ValueError, match="degree"):
        design_activation(alpha=2, family="sine", degree=4)
    with pytest.raises(ValueError, match="positive number"):
        design_activation(alpha="two")
    assert set(FAMILIES) == {"polynomial", "odd_polynomial", "sine"}


def test_sine_design_leaves_the_shared_builtin_alone():
    designed = design_activation(alpha=3.0, family="sine")
    builtin = activation("sine_family", a=designed.params["a"])
    assert builtin.params == {"a": designed.params["a"]}
    assert builtin.name.startswith("sine_family") and designed.name.startswith("designed")
    xi = np.linspace(-1, 1, 7)
    np.testing.assert_array_equal(designed.dual(xi), builtin.dual(xi))


def test_design_range_is_stated_and_larger_dimensions_are_pointed_elsewhere():
    """design reaches alpha <= 119.589 (float64 dual coefficients); dimension 1000 or 10^4
    gets an error that says so and names the rule that serves any D."""
    import math
    from pathlib import Path

    import numpy as np

    from infdepth import SingularKernelClassifier
    from infdepth.design import MAX_POLYNOMIAL_ALPHA, MIN_C0, polynomial_alpha

    assert MAX_POLYNOMIAL_ALPHA == pytest.approx(polynomial_alpha(math.log(MIN_C0), 2),
                                                 abs=1e-3)
    assert design_activation(alpha=119.5).params["alpha"] == 119.5
    for dimension in (1000, 10_000):
        with pytest.raises(ValueError, match=r"largest reachable alpha is 119\.589.*"
                           r"SingularKernelClassifier\(alpha=D\)"):
            design_activation(dimension=dimension)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "any data dimension" not in readme and "119.6" in readme
    # the suggested rule works at those dimensions (log-domain weights, no overflow)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 10_000))
    y = (X[:, 0] > 0).astype(int)
    clf = SingularKernelClassifier(alpha=10_000.0).fit(X, y)
    P = clf.predict_proba(X[:5])
    assert np.all(np.isfinite(P)) and np.array_equal(clf.predict(X[:5]), y[:5])
