"""Which classifier an infinitely deep ResNet becomes, by branch exponent (docs/resnet.md §6).

With branches beta_L = L^(-gamma) the blocks' total weight is T = L b = L^(1 - 2 gamma)
(b = beta_L^2, the "depth-time" the network reaches):

* gamma > 1/2: T -> 0, the kernel tends to the input kernel xi (a linear classifier);
* gamma = 1/2: T = 1, the depth-time ODE kernel (:mod:`infdepth.resnet`);
* gamma < 1/2 (fixed beta is gamma = 0): T -> infinity and the kernel degenerates. Where it
  goes is decided by how phi looks at *large variance*, because q_l(x, x) grows without
  bound along depth. If phi(s x) ~ s^k h(x) as s -> infinity (k the degree at infinity,
  h(x) = a_+ x^k for x > 0 and a_- |x|^k for x < 0), the normalized block dual D_q tends
  to the dual D_h of h, and the normalized NNGP correlation obeys

  - k < 1 (bounded phi: erf, tanh, sigmoid; oscillating phi: sin) the flow
    d rho / d log T = D_h(rho) - rho, because A(q) / q -> 0 (each block moves rho by O(1/T));
  - k = 1 (phi growing linearly: ReLU family, softplus, GELU, SiLU) the map
    rho -> (rho + c D_h(rho)) / (1 + c), c = b E[h^2] (a leaky-ReLU MLP layer);
  - k > 1 (polynomials) the map rho -> D_h(rho): the block dominates the skip, and the
    network is asymptotically the MLP of h.

  In each case the attractor of that flow or map is classified as for the MLP
  (:data:`infdepth.taxonomy.RULE_OF_REGIME`): an interior attracting point (or 1) gives the
  majority vote, an attracting 0 gives the vote sign(sum_i y_i psi(<x, x_i>)) with the
  limit profile psi = lim k_T / rate. For the flow the rate is T^-(1 - D_h'(rho*)): the
  exponent of a *flow*, not of a map, so a superattracting 0 (D_h'(0) = 0, sin) gives the
  rate 1/T and not the nearest neighbour.

For oscillating phi (no power law at infinity) the dual at large variance tends to
mu^2 / P off the diagonal, mu and P the mean of phi and of phi^2 over large arguments
(Riemann-Lebesgue: sin's is 0).
"""

from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from .activations import Activation
from .duals import Dual, ReluFamilyDual
from .dynamics import find_attractor
from .taxonomy import RULE_OF_REGIME

__all__ = ["check_branch_exponent", "LargeVarianceForm", "large_variance_form",
           "ResNetLimit", "resnet_limit"]

#: Where phi is sampled to read its form at infinity: 10^4 .. 10^12.
LARGE_ARGUMENTS = 10.0 ** np.arange(4, 13)
#: Relative spread of phi(x) / x^k over the last decades accepted as a power law.
POWER_LAW_TOLERANCE = 1e-5


def check_branch_exponent(gamma) -> float:
    """A finite branch exponent gamma >= 0 (beta_L = L^(-gamma)); ValueError otherwise."""
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real):
        raise ValueError(f"branch_exponent must be a real number >= 0, got {gamma!r}")
    gamma = float(gamma)
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"branch_exponent must be finite and >= 0 (beta_L = L^-gamma), "
                         f"got {gamma!r}")
    return gamma


# ------------------------------------------------------------------ phi at infinity
@dataclass(frozen=True)
class LargeVarianceForm:
    """phi(s x) ~ s^degree h(x) as s -> infinity, h = a_plus x^k (x > 0), a_minus |x|^k.

    ``degree`` is None when phi has no power law at infinity but stays bounded
    (oscillating, like sin); then ``mean`` and ``power`` are the averages of phi and
    phi^2 over large arguments, and the large-variance dual is mean^2 / power off the
    diagonal.
    """

    degree: float | None
    a_plus: float = 0.0
    a_minus: float = 0.0
    mean: float = 0.0
    power: float = 1.0

    @property
    def leaky_relu_coefficients(self) -> tuple[float, float]:
        """(alpha, beta) with h = alpha x + beta |x| (degree 1: the ReLU family's form)."""
        return (self.a_plus - self.a_minus) / 2, (self.a_plus + self.a_minus) / 2

    def _step(self) -> tuple[float, float]:
        """(m, s) with h = m + s sign(x) (degree 0)."""
        return (self.a_plus + self.a_minus) / 2, (self.a_plus - self.a_minus) / 2

    def dual(self, rho):
        """D_h(rho), the normalized dual of h (closed forms for degrees 0 and 1)."""
        rho = np.clip(np.asarray(rho, dtype=float), -1.0, 1.0)
        if self.degree is None:
            return np.where(rho >= 1.0, 1.0, self.mean**2 / self.power)
        if self.degree == 0:  # h = m + s sign(x): E h(u) h(v) = m^2 + s^2 (2/pi) arcsin(rho)
            m, s = self._step()
            return (m * m + s * s * (2 / np.pi) * np.arcsin(rho)) / (m * m + s * s)
        return _h_dual(self).value(rho)

    def dual_derivative(self, rho):
        """D_h'(rho) on (-1, 1)."""
        rho = np.clip(np.asarray(rho, dtype=float), -1.0, 1.0)
        if self.degree is None:
            return np.zeros_like(rho)
        if self.degree == 0:
            m, s = self._step()
            return s * s * (2 / np.pi) / np.sqrt(1 - rho * rho) / (m * m + s * s)
        return _h_dual(self).derivative(rho)


def _power_law(y: np.ndarray, x: np.ndarray) -> tuple[float, float] | None:
    """(k, c) with y ~ c x^k on the last decades of x, (0, 0) if y -> 0; None otherwise."""
    scale = max(float(np.max(np.abs(y))), 1e-300)
    if np.all(np.abs(y[-4:]) <= 1e-12 * max(scale, 1.0)):
        return 0.0, 0.0
    if y[-1] == 0 or y[-2] == 0 or np.sign(y[-1]) != np.sign(y[-2]):
        return None
    k = math.log10(y[-1] / y[-2])
    if abs(k - round(k)) < 1e-6:
        k = float(round(k))
    c = y[-4:] / x[-4:] ** k
    if np.ptp(c) > POWER_LAW_TOLERANCE * abs(c[-1]):
        return None
    return k, float(c[-1])


def large_variance_form(act: Activation) -> LargeVarianceForm:
    """Read phi's behaviour at infinity from phi itself (docs/resnet.md §6).

    phi is evaluated at +-10^4 .. +-10^12: a power law c x^k on each side (the sides
    may have different degrees; the lower one has coefficient 0 in h), or, when there is
    none and phi stays bounded, its mean and mean square over [10^6, 10^6 + 2000 pi].
    """
    x = LARGE_ARGUMENTS
    with np.errstate(all="ignore"):
        plus = np.asarray(act.function(x), dtype=float)
        minus = np.asarray(act.function(-x), dtype=float)
    if not (np.all(np.isfinite(plus)) and np.all(np.isfinite(minus))):
        raise ValueError(f"activation {act.name!r} is not finite at arguments up to 1e12: "
                         "its infinitely deep ResNet (branch_exponent < 1/2) cannot be "
                         "classified")
    sides = _power_law(plus, x), _power_law(minus, x)
    if None not in sides:
        (k_plus, c_plus), (k_minus, c_minus) = sides
        k = max(k_plus if c_plus else 0.0, k_minus if c_minus else 0.0)
        return LargeVarianceForm(k, c_plus if k_plus == k else 0.0,
                                 c_minus if k_minus == k else 0.0)
    t = np.linspace(1e6, 1e6 + 2000 * np.pi, 400_001)
    with np.errstate(all="ignore"):
        values = np.concatenate([act.function(t), act.function(-t)])
    if not np.all(np.isfinite(values)) or np.max(np.abs(values)) > 1e3 * max(
            1.0, float(np.max(np.abs(act.function(np.linspace(-10, 10, 201)))))):
        raise ValueError(f"activation {act.name!r} has no power law at infinity and is not "
                         "bounded there: its infinitely deep ResNet cannot be classified")
    return LargeVarianceForm(None, mean=float(np.mean(values)),
                             power=float(np.mean(values * values)))


@functools.lru_cache(maxsize=32)
def _h_dual(form: LargeVarianceForm) -> Dual:
    """D_h as a Dual: the ReLU family's closed form for degree 1, otherwise the Hermite
    route of ``Activation.from_callable(h)`` (built once per form: root finding on the
    flow calls it many times)."""
    if form.degree == 1:
        return ReluFamilyDual(*form.leaky_relu_coefficients)
    k, ap, am = form.degree, form.a_plus, form.a_minus

    def h(x):
        return np.where(x > 0, ap, am) * np.abs(x) ** k

    return Activation.from_callable(h, name=f"h (degree {k:g})").dual_function


# ------------------------------------------------------------------------- the limit
@dataclass(frozen=True)
class ResNetLimit:
    """Which classifier an infinitely deep ResNet with branches L^-gamma becomes.

    Attributes
    ----------
    activation : str
    branch_exponent : float
    kind : str
        ``"input_kernel"`` (gamma > 1/2), ``"ode_kernel"`` (gamma = 1/2) or
        ``"degenerate"`` (gamma < 1/2).
    rule : str
        The limiting classifier: ``"interpolation"`` (with the input or the ODE kernel)
        or, degenerate, a rule of :data:`infdepth.taxonomy.RULE_OF_REGIME`.
    description : str
        The rule in words.
    rate : str
        How the depth-L kernel approaches the limit.
    regime : str or None
        Degenerate only: the attractor's kind (the vocabulary of
        :class:`infdepth.dynamics.Attractor`) of the large-variance flow or map.
    point : float or None
        Degenerate only: the NNGP's limit correlation rho* off the diagonal.
    exponent : float or None
        Degenerate, k < 1 only: rho_T - rho* ~ psi T^-exponent, exponent = 1 - D_h'(rho*).
    large_variance : LargeVarianceForm or None
    """

    activation: str
    branch_exponent: float
    kind: str
    rule: str
    description: str
    rate: str
    regime: str | None = None
    point: float | None = None
    exponent: float | None = None
    large_variance: LargeVarianceForm | None = None

    @property
    def message(self) -> str:
        return (f"the infinitely deep ResNet (branch_exponent={self.branch_exponent:g}) of "
                f"{self.activation} is not a kernel: it is the rule {self.rule!r}, "
                f"{self.description}; {self.rate}. Use a finite depth, or "
                "branch_exponent >= 0.5")


def _flow_attractor(form: LargeVarianceForm) -> tuple[str, float, float]:
    """(regime, rho*, exponent) of d rho / d log T = D_h(rho) - rho on (-1, 1)."""
    grid = np.linspace(0.0, 1.0 - 1e-9, 2001)
    gap = form.dual(grid) - grid
    if np.all(gap > 0):  # every correlation flows to 1
        return "one", 1.0, float("nan")
    if gap[0] <= 0:  # D_h(0) = 0 (odd h, or sin): 0 attracts when D_h'(0) < 1
        point = 0.0
    else:
        j = int(np.argmax(gap <= 0))
        point = float(brentq(lambda r: float(form.dual(r)) - r, grid[j - 1], grid[j],
                             xtol=1e-15, rtol=1e-15))
    exponent = 1.0 - float(form.dual_derivative(point))
    if exponent <= 0:
        raise ValueError("the large-variance flow is neutral at its fixed point "
                         f"(D_h'({point:g}) >= 1): the ResNet's limit is not classified")
    return ("zero" if point == 0.0 else "interior"), point, exponent


#: The degenerate limits' rules in words (the names are the MLP's, RULE_OF_REGIME).
_DEGENERATE_RULES = {
    "majority_vote": "the majority vote sign(sum_i y_i), the majority class of the "
    "training set (the kernel tends to a constant off the diagonal)",
    "singular": "the profile vote sign(sum_i y_i psi(<x, x_i>)) with the limit profile "
    "psi = lim k_T / rate (the kernel tends to 0 off the diagonal; psi is unbounded at 1)",
    "psi_interpolation": "interpolation with psi = lim (1 - k_T) / rate (the kernel tends to 1)",
    "nearest_neighbor": "1-nearest neighbour (as the MLP of h)",
}


def _degenerate(act: Activation, gamma: float) -> ResNetLimit:
    form = large_variance_form(act)
    name, k = act.name, form.degree
    T = "T = L^(1 - 2 gamma)" if gamma > 0 else "T = L"
    point = exponent = None
    if k is not None and k > 1:  # the block dominates: the MLP of h
        attractor = find_attractor(_h_dual(form))
        regime, point = attractor.kind, attractor.point
        rate = (f"the variance grows super-exponentially along depth (degree {k:g} at "
                "infinity) and each block acts as an MLP layer of h, so the kernel "
                "converges as the MLP of h does")
    elif k == 1:
        alpha, beta = form.leaky_relu_coefficients
        if beta == 0:
            raise ValueError(f"activation {name!r} is linear at infinity (phi(x) ~ "
                             f"{alpha:.6g} x at both ends): the large-variance map is the "
                             "identity at leading order and its ResNet limit is not "
                             "classified")
        regime, point = "parabolic", 1.0
        rate = (f"the large-variance block is a leaky-ReLU MLP layer (parabolic at 1): "
                f"1 - k_L ~ C / T^2 for every xi > -1, with {T}, as "
                "for the ReLU family (docs/resnet.md §6)")
    else:
        regime, point, exponent = _flow_attractor(form)
        what = ("tends to 1" if regime == "one" else
                f"tends to rho* = {point:.10g} off the diagonal, rho_T - rho* ~ psi(xi) "
                f"T^-{exponent:.6g}")
        rate = (f"the NNGP {what} with {T} (the flow d rho / d log T = D_h(rho) - rho of "
                "the large-variance dual); the NTK's diagonal grows faster than its "
                "off-diagonal values, which it leaves behind (docs/resnet.md §6)")
    rule = RULE_OF_REGIME[regime]
    return ResNetLimit(name, gamma, "degenerate", rule, _DEGENERATE_RULES[rule], rate, regime,
                       point, exponent, form)


def resnet_limit(act, branch_exponent: float = 0.5) -> ResNetLimit:
    """The taxonomy of infinitely deep ResNets by branch exponent (docs/resnet.md §6).

    Examples
    --------
    >>> resnet_limit("erf", 0.0).rule, round(resnet_limit("erf", 0.0).exponent, 6)
    ('singular', 0.36338)
    >>> resnet_limit("sigmoid", 0.25).rule
    'majority_vote'
    """
    from .activations import activation as _activation

    act = _activation(act) if isinstance(act, str) else act
    gamma = check_branch_exponent(branch_exponent)
    if gamma > 0.5:
        return ResNetLimit(act.name, gamma, "input_kernel", "interpolation",
                           "interpolation with the input kernel xi = <x, z> (a linear "
                           "classifier on the sphere)",
                           f"k_L - xi = O(L^(1 - 2 gamma)) = O(L^{1 - 2 * gamma:.3g})")
    if gamma == 0.5:
        return ResNetLimit(act.name, gamma, "ode_kernel", "interpolation",
                           "kernel interpolation with the depth-time ODE kernel at t = 1 "
                           "(a non-degenerate kernel)",
                           "k_L - k_inf = O(1/L) (the recursion is Euler's scheme for the ODE)")
    return _degenerate(act, gamma)
