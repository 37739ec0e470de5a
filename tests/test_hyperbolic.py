"""Hyperbolic fixed points: the Schroder depth jumps against the 50-digit recursion.

Each case reaches its fixed point through the Schroder coordinate (at 0, at an interior
point, at 1 attracting) and, for m > 1, passes the repelling point 1 in one step; the
engine's tables must agree with the literal recursion (tests/reference.py) in values and
complements wherever the 50-digit reference resolves them.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from reference import erf_dual, erf_dual_derivative, kernels, polynomial_dual, sinh_dual

import infdepth
from infdepth import Activation, kernel_function
from infdepth.dynamics import find_attractor
from infdepth.hyperbolic import schroder_coordinate

CASES = {
    "erf": (lambda: infdepth.activation("erf"), (erf_dual, erf_dual_derivative), "zero"),
    "sine_family": (lambda: infdepth.activation("sine_family", a=2.676), sinh_dual(2.676),
                    "zero"),
    "dual xi/2 + xi^3/2": (lambda: Activation.from_dual_coefficients([0, 0.5, 0, 0.5]),
                           polynomial_dual([0, 0.5, 0, 0.5]), "zero"),
    "dual 0.3 + 0.2 xi + 0.5 xi^2": (
        lambda: Activation.from_dual_coefficients([0.3, 0.2, 0.5]),
        polynomial_dual([0.3, 0.2, 0.5]), "interior"),
    "dual 0.5 + 0.3 xi + 0.2 xi^2": (
        lambda: Activation.from_dual_coefficients([0.5, 0.3, 0.2]),
        polynomial_dual([0.5, 0.3, 0.2]), "one"),
}
POINTS = [-0.999999, -0.5, 0.0, 1e-3, 0.3, 0.6, 0.9, 1 - 1e-6, 1 - 1e-12, 1 - 1e-15]


@pytest.mark.parametrize("name", sorted(CASES))
def test_schroder_coordinate_conjugates_the_map(name):
    act, _, kind = CASES[name]
    dual = act().dual_function
    attractor = find_attractor(dual)
    assert attractor.kind == kind
    c = schroder_coordinate(dual, kind, attractor.point)
    s = np.array([c.radius, c.radius / 3, -c.radius / 7])
    if kind == "zero":
        image = dual.value(s)
    elif kind == "one":
        s = np.abs(s)
        image = dual.complement(s)
    else:
        image = dual.value(attractor.point + s) - attractor.point
    # psi(F(s)) = lam psi(s), to the rounding of F itself
    np.testing.assert_allclose(c(image), c.multiplier * c(s), rtol=1e-13)


@pytest.mark.parametrize("kind", ["nngp", "ntk"])
@pytest.mark.parametrize("depth", [10, 300, 3000])
@pytest.mark.parametrize("name", sorted(CASES))
def test_tables_match_the_mpmath_recursion(name, depth, kind):
    make, (dual, derivative), _ = CASES[name]
    act = make()
    table = kernel_function(act, kind, depth)
    x = np.array(POINTS)
    values, complements = table(x), np.exp(table.log_complement(x))
    for i, xi in enumerate(POINTS):
        S, K = kernels(mp.mpf(xi), dual, derivative, depth)
        k = S if kind == "nngp" else K
        if abs(k) > 1e-280:  # float64 holds it (the log form is tested elsewhere)
            assert values[i] == pytest.approx(float(k), rel=1e-9)
        if abs(1 - k) > 1e-40:  # the 50-digit reference resolves the complement
            assert complements[i] == pytest.approx(float(1 - k), rel=1e-9)
