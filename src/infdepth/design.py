"""Activations whose infinitely deep network is the singular kernel classifier with a
prescribed exponent alpha (docs/theory.md section 5).

In the singular class (dual(0) = 0, 0 < c0 = dual'(0) < 1, m = dual'(1) > 1) the
infinitely deep network classifies with a kernel ~ ||x - z||^-alpha,
alpha = 2 log(1/c0) / log(m). With alpha = D, the dimension of the data's support, it
is the Hilbert kernel estimate, which is consistent (Bayes optimal as n -> infinity).

Families (``design_activation(..., family=...)``):

``"polynomial"`` (default)
    dual (1 - t) xi + t xi^k with k even, so dual(-1) = 2t - 1 > -1: no singularity at
    antipodal points. alpha runs from 2/(k - 1) (t -> 0) to infinity (t -> 1), so every
    alpha > 0 is reached by taking k > 1 + 2/alpha. The smallest such even k is used
    (it gives the flattest log-periodic factor P: a larger k at the same alpha means a
    smaller c0 and a more oscillating P), except that k is raised while m = 1 + t(k - 1)
    would stay below ``min_slope`` (designs with m barely above 1 need thousands of
    layers to reach their limit shape). Range: alpha in [2/(MAX_DEGREE - 1), 119.589]
    (``MAX_POLYNOMIAL_ALPHA``): data dimensions above ~120 (for instance the ambient
    dimension of image data) cannot be served by a designed activation, and the error
    says to use ``SingularKernelClassifier(alpha=D)`` instead; the
    upper end is set by c0 >= 1e-18 (dual coefficients below 1e-20 are treated as zero by
    the dual machinery) together with c0 <= (2 - c0)^(-alpha/2) ~ 2^(-alpha/2), which holds
    for every singular-class dual (m = sum k c_k >= c0 + 2 (1 - c0)).
``"odd_polynomial"``
    the same with k odd (the paper's xi/2 + xi^3/2 is k = 3, alpha = 2): an odd dual, so
    h is singular (and negative) at antipodal points too.
``"sine"``
    dual sinh(a xi) / sinh(a), phi(x) proportional to sin(sqrt(a) x): c0 = a / sinh a,
    m = a coth a. alpha(a) increases from 1 (a -> 0) to ~103 (a = 300, the largest a the
    closed form allows): alpha <= 1 is unreachable in this family.

t (or a) is found with :func:`scipy.optimize.brentq` on the exact formula, solved in
the variable log c0 so that c0 keeps full relative precision when it is tiny.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy.optimize import brentq

from .activations import Activation
from .activations import activation as _activation

__all__ = ["design_activation", "design_formula", "FAMILIES", "sine_alpha", "polynomial_alpha"]

FAMILIES = ("polynomial", "odd_polynomial", "sine")
#: Largest polynomial degree used (binomial re-expansions stay exact below ~1000).
MAX_DEGREE = 500
#: Smallest c0 used by the polynomial families.
MIN_C0 = 1e-18
#: Default lower bound on m = dual'(1) for the polynomial families.
MIN_SLOPE = 1.05
#: Range of a for the sine family (SinhDual needs a <= 300).
SINE_A_RANGE = (1e-4, 300.0)
#: The largest alpha the polynomial families reach (c0 = MIN_C0 at degree 2; a test
#: checks it against polynomial_alpha). The sine family reaches 102.95.
MAX_POLYNOMIAL_ALPHA = 119.589
#: What to use beyond the reachable range.
LARGE_ALPHA_HINT = (
    "For data of a larger (intrinsic) dimension D use "
    "infdepth.SingularKernelClassifier(alpha=D): the Hilbert kernel estimate itself, any "
    "alpha > 0, weights computed in the log domain (docs/theory.md section 5)."
)


def polynomial_alpha(log_c0: float, k: int) -> float:
    """alpha of (1 - t) xi + t xi^k with c0 = 1 - t = exp(log_c0)."""
    t = -math.expm1(log_c0)
    return -2.0 * log_c0 / math.log1p(t * (k - 1))


def _sinh_minus_x(a: float) -> float:
    if a < 0.5:
        return sum(a ** (2 * n + 1) / math.factorial(2 * n + 1) for n in range(1, 12))
    return math.sinh(a) - a


def _x_cosh_minus_sinh(a: float) -> float:
    if a < 0.5:
        return sum(2 * n * a ** (2 * n + 1) / math.factorial(2 * n + 1) for n in range(1, 12))
    return a * math.cosh(a) - math.sinh(a)


def sine_alpha(a: float) -> float:
    """alpha of sinh(a xi) / sinh(a): 2 log(sinh(a) / a) / log(a coth a), cancellation-free."""
    log_inv_c0 = math.log1p(_sinh_minus_x(a) / a)  # log(sinh a / a)
    log_m = math.log1p(_x_cosh_minus_sinh(a) / math.sinh(a))  # log(a coth a)
    return 2.0 * log_inv_c0 / log_m


def _check_request(alpha, dimension) -> float:
    if (alpha is None) == (dimension is None):
        raise ValueError(
            "give exactly one of alpha= and dimension= (dimension=D means alpha = D, the "
            "Hilbert kernel exponent for data on a D-dimensional support)"
        )
    name = "alpha" if alpha is not None else "dimension"
    value = alpha if alpha is not None else dimension
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive number, not a bool")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"{name} must be a positive finite number, got {value!r}: the singular exponent "
            "alpha = 2 log(1/c0) / log(m) is positive for every singular-class dual"
        )
    return value


def _polynomial(alpha: float, odd: bool, degree: int | None, min_slope: float):
    family = "odd_polynomial" if odd else "polynomial"
    if degree is not None:
        if isinstance(degree, bool) or int(degree) != degree or degree < 2:
            raise ValueError(f"degree must be an integer >= 2, got {degree!r}")
        k = int(degree)
        if k > MAX_DEGREE:
            raise ValueError(f"degree must be at most {MAX_DEGREE} (the dual machinery's "
                             f"largest polynomial degree), got {k}")
        if (k % 2 == 1) != odd:
            raise ValueError(f"the {family} family needs an {'odd' if odd else 'even'} degree")
        if 2 / (k - 1) >= alpha:
            raise ValueError(
                f"alpha = {alpha:g} is unreachable with degree {k}: (1 - t) xi + t xi^{k} has "
                f"alpha > 2/(k - 1) = {2 / (k - 1):.6g}; use degree > {1 + 2 / alpha:.6g}"
            )
        candidates = [k]
    else:
        k = max(2, math.floor(1 + 2 / alpha) + 1)
        if (k % 2 == 1) != odd:
            k += 1
        if odd and k < 3:
            k = 3
        candidates = list(range(k, MAX_DEGREE + 1, 2))
        if not candidates:
            raise ValueError(
                f"alpha = {alpha:g} is unreachable in the {family} family: it needs degree > "
                f"{1 + 2 / alpha:.6g}, above the supported maximum {MAX_DEGREE} "
                f"(alpha >= {2 / (MAX_DEGREE - 1):.4g})"
            )
    lo = math.log(MIN_C0)
    for k in candidates:
        if polynomial_alpha(lo, k) < alpha:
            raise ValueError(
                f"alpha = {alpha:g} is unreachable in the {family} family: it needs "
                f"c0 < {MIN_C0:g} (every dual has m >= 2 - c0, hence c0 <= (2 - c0)^(-A/2) "
                f"~ 2^(-A/2) at alpha = A), below the "
                "resolution of dual coefficients (1e-20); the largest reachable alpha is "
                f"{polynomial_alpha(lo, k):.6g} at degree {k}. " + LARGE_ALPHA_HINT
            )
        log_c0 = brentq(lambda u, k=k: polynomial_alpha(u, k) - alpha, lo, -1e-12,
                        xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
        c0 = math.exp(log_c0)
        t = -math.expm1(log_c0)
        if 1 + t * (k - 1) >= min_slope or degree is not None or k == candidates[-1]:
            break
    coefficients = np.zeros(k + 1)
    coefficients[1] = c0
    coefficients[k] = t
    name = f"designed(alpha={alpha:g}, {family}: {c0:.6g} xi + {t:.6g} xi^{k})"
    act = Activation.from_dual_coefficients(coefficients, name=name)
    act.params.update({"alpha": alpha, "family": family, "degree": k, "t": t, "c0": c0})
    return act


def _sine(alpha: float):
    a_lo, a_hi = SINE_A_RANGE
    lo, hi = sine_alpha(a_lo), sine_alpha(a_hi)
    if not lo < alpha <= hi:
        raise ValueError(
            f"alpha = {alpha:g} is unreachable in the sine family: sinh(a xi)/sinh(a) has "
            f"alpha(a) = 2 log(sinh(a)/a) / log(a coth a) in (1, {hi:.6g}] for 0 < a <= "
            f"{a_hi:g} (alpha -> 1 as a -> 0). Use family='polynomial' (alpha up to "
            f"{MAX_POLYNOMIAL_ALPHA:g}). " + (LARGE_ALPHA_HINT if alpha > hi else "")
        )
    a = brentq(lambda a: sine_alpha(a) - alpha, a_lo, a_hi, xtol=1e-15,
               rtol=4 * np.finfo(float).eps, maxiter=500)
    # a renamed copy of the shared built-in (same dual, same cached kernel tables)
    return dataclasses.replace(
        _activation("sine_family", a=a),
        name=f"designed(alpha={alpha:g}, sine: sinh({a:.10g} xi) / sinh({a:.10g}))",
        params={"a": a, "alpha": alpha, "family": "sine"},
    )


def design_activation(alpha=None, dimension=None, family: str = "polynomial", *,
                      degree: int | None = None, min_slope: float = MIN_SLOPE) -> Activation:
    """An activation whose infinitely deep network has singular exponent ``alpha``.

    Parameters
    ----------
    alpha : float, optional
        The exponent: the limit kernel behaves like ||x - z||^-alpha (times the bounded
        log-periodic factor P of docs/theory.md section 4).
    dimension : float, optional
        The dimension D of the data's support; means alpha = D (the Hilbert kernel
        estimate, consistent for data with a D-dimensional density). Give exactly one
        of ``alpha`` and ``dimension``.
    family : {"polynomial", "odd_polynomial", "sine"}
        See the module docstring. The default has no antipodal singularity.
    degree : int, optional
        Force the degree k of a polynomial family.
    min_slope : float
        Polynomial families: smallest acceptable m = dual'(1) when k is chosen
        automatically.

    Returns
    -------
    Activation
        Built from its dual coefficients (polynomial families; phi is the numpy-callable
        Hermite series sum_k sqrt(c_k) He_k / sqrt(k!)) or the closed-form sine family.
        ``params`` records alpha, family and the solved parameters.

    Raises
    ------
    ValueError
        alpha <= 0, both or neither of alpha and dimension, an unknown family, or an
        alpha the family cannot reach.
    """
    alpha = _check_request(alpha, dimension)
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")
    if degree is not None and family == "sine":
        raise ValueError("degree= applies to the polynomial families only")
    if not (isinstance(min_slope, (int, float)) and min_slope >= 1):
        raise ValueError("min_slope must be a number >= 1")
    if family == "sine":
        return _sine(alpha)
    return _polynomial(alpha, family == "odd_polynomial", degree, min_slope)


def design_formula(act: Activation) -> list[str]:
    """Human-readable lines: the dual, phi and its Hermite coefficients."""
    params = act.params
    lines = []
    if params.get("family") == "sine":
        a = params["a"]
        lines.append(f"dual(xi) = sinh({a:.12g} xi) / sinh({a:.12g})")
        norm = math.sqrt(-math.expm1(-2 * a) / 2)
        lines.append(f"phi(x)   = sin({math.sqrt(a):.12g} x) / {norm:.12g}")
        lines.append(
            "hermite  a_k^2 = a^k / (k! sinh a) for odd k (orthonormal He_k / sqrt(k!))"
        )
        a_k = act.hermite_coefficients
        shown = [(k, v) for k, v in enumerate(a_k) if abs(v) > 1e-12][:8]
        lines.append("hermite  " + ", ".join(f"a_{k} = {v:.12g}" for k, v in shown))
        return lines
    c = act.dual_function.coefficients
    terms = [(k, ck) for k, ck in enumerate(c) if ck > 0]
    lines.append("dual(xi) = " + " + ".join(f"{ck:.12g} xi^{k}" for k, ck in terms))
    phi = " + ".join(f"{math.sqrt(ck):.12g} He_{k}(x) / sqrt({k}!)" for k, ck in terms)
    lines.append("phi(x)   = " + phi)
    lines.append(
        "hermite  " + ", ".join(f"a_{k} = {math.sqrt(ck):.12g}" for k, ck in terms)
        + " (all other a_k = 0)"
    )
    return lines
