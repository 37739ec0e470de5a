"""Which classifier an infinitely deep (and infinitely wide) network becomes.

docs/theory.md section 4. With the dual normalized (dual(1) = 1), m = dual'(1),
c0 = dual'(0) and v0 = dual(0), the limit of the NNGP and of the NTK predictor as the
depth L -> infinity is decided by the fixed points of xi -> dual(xi) on [-1, 1]:

=====================  ============================  =========================================
kind                   condition                     limit rule
=====================  ============================  =========================================
``singular``           v0 = 0, 0 < c0 < 1, m > 1     sign(sum_i y_i h(<x, x_i>)), h the Koenigs
                                                     function; h(1 - d) = d^-gamma P(log d),
                                                     kernel ~ ||x - z||^-alpha, alpha = 2 gamma
``nearest_neighbor``   v0 = 0, c0 = 0, m > 1         1-nearest neighbour
``majority_vote``      v0 > 0, m > 1 (interior       sign(sum_i y_i); for m = 1 (parabolic,
                       attracting xi*) or m = 1      ReLU) only at depths >> (1 - xi)^(-1/2)
``psi_interpolation``  m < 1 (1 attracts)            interpolation with the conditionally
                                                     negative definite psi = lim (1 - S_L)/m^L
=====================  ============================  =========================================

The NTK has the same limit rule as the NNGP in every class (it only converges more
slowly: like 1/L in the singular and psi classes). :func:`limit` returns the
classification as an immutable :class:`InfiniteDepthLimit`; :func:`classify` is the
decision itself on the three numbers (v0, c0, m) and is what the phase diagram uses;
:func:`limit_predict` applies the limit rule to data.

Borderline decisions (stated tolerances)
----------------------------------------
* ``v0`` and ``c0`` count as zero when at most :data:`ZERO_TOLERANCE` = 1e-20. That is
  the resolution of a dual's coefficients (``duals.COEFFICIENT_TOLERANCE``): for a
  numerically computed dual a coefficient a_k^2 below it is quadrature noise (a_k is
  computed to ~1e-16), and a true dual(0) below it would need a depth > 46 / log(1/lambda)
  to show.
* ``m`` counts as 1 when |m - 1| <= max(:data:`SLOPE_TOLERANCE`, 3 u) where u is the
  uncertainty of m. u = 0 for closed forms and exact polynomials (m known to rounding,
  hence the 1e-12). For a dual computed from a callable, the series is truncated at
  degree K = 512 and m = sum_k k c_k misses the tail sum_{k > K} k c_k, which is large
  for kinked activations (ReLU given as a callable: truncated m = 0.989).
  :func:`slope_tail_estimate` estimates that tail from the decay of the coefficients
  over the dyadic blocks (K/4, K/2] and (K/2, K] (a power law c_k ~ k^-p makes their
  ratio r = 2^(2 - p) and the tail B r / (1 - r)); u is the disagreement between the
  estimates from two pairs of blocks plus 1% of the tail. r >= 1 means the tail diverges:
  m = inf (e.g. the sign function: its dual has a square-root cusp at 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.optimize import brentq

from .activations import Activation, not_an_activation
from .activations import activation as _activation
from .duals import slope_tail_estimate
from .dynamics import SLOPE_SAFETY as _SLOPE_SAFETY
from .dynamics import TOLERANCE_PARABOLIC, find_attractor

__all__ = [
    "InfiniteDepthLimit",
    "KINDS",
    "limit",
    "classify",
    "limit_predict",
    "slope_tail_estimate",
    "singular_exponent",
    "measure_singularity",
    "ZERO_TOLERANCE",
    "SLOPE_TOLERANCE",
]

#: The four infinite-depth classifiers.
KINDS = ("singular", "nearest_neighbor", "majority_vote", "psi_interpolation")
#: dual(0) and dual'(0) at most this count as exactly zero (see module docstring).
ZERO_TOLERANCE = 1e-20
#: |m - 1| at most this counts as m = 1 for exactly known duals.
SLOPE_TOLERANCE = TOLERANCE_PARABOLIC
#: Uncertainties of m are multiplied by this before comparing m with 1.
SLOPE_SAFETY = _SLOPE_SAFETY
#: Where P(log delta) = h(1 - delta) delta^gamma is sampled: one log-period below this.
OSCILLATION_DELTA = 1e-12
OSCILLATION_SAMPLES = 256

#: The rule at depth infinity of each regime of the depth map (the attractor's class,
#: :attr:`infdepth.dynamics.Attractor.kind`). The one table from regime to rule: used by
#: :func:`classify`, :func:`limit` and ``InfiniteNetworkClassifier`` (``rule_``).
RULE_OF_REGIME = {
    "zero": "singular",
    "superattracting_zero": "nearest_neighbor",
    "interior": "majority_vote",
    "parabolic": "majority_vote",
    "one": "psi_interpolation",
}

_RULES = {
    "singular": "sign(sum_i y_i h(<x, x_i>)), h(1 - d) = d^-gamma P(log d): "
    "the singular kernel classifier, kernel ~ ||x - z||^-alpha",
    "nearest_neighbor": "1-nearest neighbour: the label of the training point with the "
    "largest <x, x_i> (see antipodal)",
    "majority_vote": "sign(sum_i y_i): the majority class of the training set",
    "psi_interpolation": "sign(c + sum_i b_i psi(<x, x_i>)) with [Psi 1; 1^T 0][b; c] = [y; 0]: "
    "interpolation with the conditionally negative definite psi = lim (1 - S_L) / m^L",
}


@dataclass(frozen=True)
class InfiniteDepthLimit:
    """The infinitely deep network of an activation, for the NNGP and the NTK alike.

    Attributes
    ----------
    activation : str
        Name of the activation.
    kind : str
        One of :data:`KINDS`.
    rule : str
        The limiting classifier, as a formula.
    regime : str
        The fixed point that attracts the iterates of the dual from (-1, 1):
        ``"zero"``, ``"superattracting_zero"``, ``"interior"``, ``"parabolic"`` (m = 1)
        or ``"one"`` (m < 1).
    fixed_point, multiplier : float
        That attracting fixed point (0, xi* or 1) and dual' there.
    alpha, gamma : float or None
        Singular class only: h(1 - d) ~ d^-gamma, kernel ~ ||x - z||^-alpha, alpha = 2 gamma
        = 2 log(1/c0) / log m. alpha = 0 when m = inf (a logarithmic singularity).
    oscillation : float or None
        Singular class only: relative oscillation (max - min) / mean of the log-periodic
        factor P(log d) = h(1 - d) d^gamma over one period log m, measured from the kernel
        engine at d <= 1e-12 (None if not measured).
    measured_alpha : float or None
        Singular class only: -2 times the secant slope of log h against log(1 - xi) over
        exactly one log-period (which cancels P) at 1 - xi = 1e-12, from the engine.
    c0, m, value_at_zero : float
        dual'(0), dual'(1) (best estimate, tail-corrected for truncated series), dual(0).
    m_uncertainty : float
        Uncertainty of m (0 for closed forms and exact polynomials).
    parity : int
        +1 even dual, -1 odd dual, 0 neither.
    dual_at_minus_one : float
        dual(-1).
    antipodal : str
        Behaviour at antipodal points (xi -> -1).
    convergence : str
        How fast the NNGP and NTK predictors reach the rule.
    explanation : str
        One line for humans.
    decisions : tuple of str
        The borderline decisions made, with their tolerances.
    """

    activation: str
    kind: str
    rule: str
    regime: str
    fixed_point: float
    multiplier: float
    alpha: float | None
    gamma: float | None
    oscillation: float | None
    measured_alpha: float | None
    c0: float
    m: float
    m_uncertainty: float
    value_at_zero: float
    parity: int
    dual_at_minus_one: float
    antipodal: str
    convergence: str
    explanation: str
    decisions: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        """The record as a plain dict (JSON-friendly)."""
        d = asdict(self)
        d["decisions"] = list(self.decisions)
        return d

    def format(self) -> str:
        """Multi-line human-readable form (what ``infdepth taxonomy`` prints)."""
        lines = []
        for key, value in self.as_dict().items():
            if key == "decisions":
                continue
            if isinstance(value, float):
                value = _fmt(value)
            lines.append(f"{key:17s} {value}")
        for decision in self.decisions:
            lines.append(f"{'decision':17s} {decision}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _fmt(x: float) -> str:
    if x is None:
        return "None"
    if math.isinf(x) or math.isnan(x):
        return str(x)
    return f"{x:.12g}"


# --------------------------------------------------------------------------- analysis
def _slope_at_one(act: Activation) -> tuple[float, float, str | None]:
    """(m, uncertainty, note) with the truncation tail added for numerical series."""
    dual = act.dual_function
    m = float(dual.slope_at_one)
    estimate, unc = dual.slope_estimate()
    tail = estimate - m
    if tail == 0 or tail <= 1e-10:  # exact, or the series resolved m to rounding
        return estimate, unc, None
    note = (
        f"m: the Hermite series stops at degree {dual.degree}; truncated sum k c_k = {m:.10g}, "
        f"estimated tail {tail:.3g} +- {unc:.2g} (dyadic power-law fit of the coefficients)"
    )
    return estimate, unc, note


def classify(value_at_zero: float, c0: float, m: float, m_uncertainty: float = 0.0,
             identity: bool = False) -> tuple[str, str, list[str]]:
    """The decision of docs/theory.md section 4 on the numbers (dual(0), dual'(0), dual'(1)).

    Returns ``(kind, regime, decisions)``; ``decisions`` lists the borderline
    comparisons that were made with their tolerances. Raises ``ValueError`` for the
    identity dual and for a constant dual (no attracting point / no information).
    """
    decisions: list[str] = []
    if identity:
        raise ValueError(
            "the dual is xi itself (a linear activation): every point is fixed, there is no "
            "attracting point and the kernel does not change with depth"
        )
    if m == 0:
        raise ValueError(
            "the dual is constant (phi is constant): every kernel of depth >= 1 is 1 "
            "everywhere and carries no information"
        )
    tol = max(SLOPE_TOLERANCE, SLOPE_SAFETY * m_uncertainty)
    if math.isfinite(m) and abs(m - 1) <= tol:
        if abs(m - 1) > 0:
            decisions.append(
                f"m = {m:.12g} counted as 1 (|m - 1| = {abs(m - 1):.2g} <= {tol:.2g} = "
                f"max({SLOPE_TOLERANCE:g}, {SLOPE_SAFETY:g} x uncertainty))"
            )
        return RULE_OF_REGIME["parabolic"], "parabolic", decisions
    if m < 1:
        if m_uncertainty > 1e-10:
            decisions.append(f"m = {m:.6g} < 1 beyond its tolerance {tol:.2g}")
        return RULE_OF_REGIME["one"], "one", decisions
    if math.isinf(m):
        decisions.append(
            "m = inf: the tail of sum_k k c_k diverges (c_k decays like k^-p with p <= 2)"
        )
    elif m_uncertainty > 1e-10:
        decisions.append(f"m = {m:.6g} > 1 beyond its tolerance {tol:.2g}")
    if value_at_zero > ZERO_TOLERANCE:
        return RULE_OF_REGIME["interior"], "interior", decisions
    if value_at_zero != 0:
        decisions.append(
            f"dual(0) = {value_at_zero:.3g} counted as 0 (<= {ZERO_TOLERANCE:g})"
        )
    if c0 > ZERO_TOLERANCE:
        return RULE_OF_REGIME["zero"], "zero", decisions
    if c0 != 0:
        decisions.append(f"dual'(0) = {c0:.3g} counted as 0 (<= {ZERO_TOLERANCE:g})")
    return RULE_OF_REGIME["superattracting_zero"], "superattracting_zero", decisions


def singular_exponent(c0: float, m: float) -> float:
    """alpha = 2 log(1/c0) / log(m) (0 when m = inf)."""
    if not 0 < c0 < 1 or not m > 1:
        raise ValueError(f"singular exponent needs 0 < c0 < 1 and m > 1, got c0={c0}, m={m}")
    if math.isinf(m):
        return 0.0
    return 2 * math.log(1 / c0) / math.log(m)


def measure_singularity(act: Activation, delta: float = OSCILLATION_DELTA,
                        samples: int = OSCILLATION_SAMPLES) -> tuple[float, float]:
    """(relative oscillation of P, measured alpha) from the engine's Koenigs function h.

    P(log d) = h(1 - d) d^gamma is sampled at ``samples`` points of one log-period
    d in [delta / m, delta]; the oscillation is (max P - min P) / mean P. The measured
    alpha is -2 (log h(1 - delta) - log h(1 - delta/m)) / log m, the secant slope over
    exactly one period, in which P cancels. Uses the engine's m (that of the dual as
    stored).
    """
    from .kernels import kernel_function

    dual = act.dual_function
    m = float(dual.slope_at_one)
    c0 = float(dual.derivative(np.array(0.0)))
    gamma = math.log(1 / c0) / math.log(m)
    k = kernel_function(act, "nngp", math.inf)
    log_d = math.log(delta) - np.linspace(0.0, math.log(m), samples + 1)
    d = np.exp(log_d)
    _, log_h = k.log(1.0 - d, delta=d, eps=2.0 - d)
    log_p = log_h + gamma * log_d
    p = np.exp(log_p[:-1] - log_p[:-1].max())
    oscillation = float((p.max() - p.min()) / p.mean())
    measured = float(-2 * (log_h[0] - log_h[-1]) / (log_d[0] - log_d[-1]))
    return oscillation, measured


def _interior_fixed_point(dual) -> tuple[float, float]:
    """The attracting fixed point xi* in (0, 1) of a dual with dual(0) > 0, m > 1."""
    att = find_attractor(dual)
    if att.kind == "interior":
        return att.point, att.multiplier

    def excess(t: float) -> float:
        return float(dual.value(np.array(t))) - t

    hi = 1.0 - 1e-3
    while excess(hi) >= 0 and 1 - hi > 1e-15:
        hi = 1.0 - (1.0 - hi) / 10
    if excess(hi) >= 0:
        return math.nan, math.nan
    point = brentq(excess, 0.0, hi, xtol=1e-300, rtol=1e-15, maxiter=500)
    return point, float(dual.derivative(np.array(point)))


def _antipodal(kind: str, parity: int, dual_minus_one: float, m: float) -> str:
    if parity == -1:
        text = (
            f"odd dual: dual(-1) = -1 is a second, repelling fixed point (dual'(-1) = m = "
            f"{m:.6g}); kernels are odd in xi"
        )
        if kind == "singular":
            text += "; h is singular and negative there: h(-1 + d) = -h(1 - d) -> -inf"
        elif kind == "nearest_neighbor":
            text += "; a test point near -x_j takes -y_j"
        return text
    if parity == 1:
        text = "even dual: dual(-1) = 1, antipodal points are identified (k(-xi) = k(xi))"
        if kind == "nearest_neighbor":
            text += "; a test point near -x_j takes +y_j"
        return text
    text = (
        f"dual(-1) = {dual_minus_one:.6g} in (-1, 1): -1 is not a fixed point, antipodal "
        "pairs behave like ordinary pairs after one layer"
    )
    if kind == "singular":
        text += " (h(-1) = h(dual(-1)) / c0 is finite)"
    return text


def _convergence(kind: str, regime: str) -> str:
    if regime == "zero":
        return (
            "NNGP: S_L / c0^L -> h geometrically (fast); NTK: K_L / (L c0^L) = h + B/L: "
            "same rule, slowly (B/h grows like 1/(1 - xi))"
        )
    if regime == "superattracting_zero":
        return "NNGP and NTK: super-exponential decay of off-diagonal values, fast"
    if regime == "interior":
        return "NNGP and NTK: geometric, at the rate multiplier^L"
    if regime == "parabolic":
        return (
            "NNGP and NTK: algebraic, 1 - S_L ~ C / L^2; the rule is reached only once L >> "
            "(1 - xi)^(-1/2) n / |sum_i y_i| for the closest test-training pairs (huge depth)"
        )
    return "NNGP: (1 - S_L) / m^L -> psi geometrically; NTK: same rule, with 1/L corrections"


def _explanation(kind: str, regime: str, alpha, point: float, m: float) -> str:
    if kind == "singular":
        a = "a logarithmic" if alpha == 0 else f"an ||x - z||^-{alpha:.6g}"
        return (
            f"0 attracts with 0 < c0 < 1 and m > 1: the deep network is a singular kernel "
            f"classifier with {a} singularity"
        )
    if kind == "nearest_neighbor":
        return "dual(0) = dual'(0) = 0: kernel values decay faster than any power: 1-NN"
    if regime == "parabolic":
        return "m = 1: every kernel value tends to 1 algebraically; majority vote at huge depth"
    if kind == "majority_vote":
        return (
            f"attracting fixed point xi* = {point:.6g}: the NNGP Gram matrix tends to "
            "xi* J + (1 - xi*) I and the network predicts the majority class"
        )
    return (
        f"m = {m:.6g} < 1: 1 attracts, 1 - S_L ~ m^L psi: kernel interpolation with the "
        "conditionally negative definite psi (not the majority vote)"
    )


def limit(act, *, oscillation: bool = True, architecture: str = "mlp",
          branch_exponent: float = 0.5, **params) -> InfiniteDepthLimit:
    """The infinitely deep network of an activation (name or :class:`Activation`).

    Parameters
    ----------
    act : str or Activation
    oscillation : bool
        In the singular class, measure the oscillation of P and the one-period secant
        alpha from the kernel engine (builds the depth-infinity table once per
        activation; 0.1-3 s).
    architecture, branch_exponent : str, float
        ``"resnet"`` returns the residual network's limit with branches scaled by
        L^-branch_exponent (:func:`infdepth.resnet.resnet_limit`, docs/resnet.md).
    **params
        Parameters of a built-in activation given by name.

    Raises
    ------
    ValueError
        For a dual without an attracting point (the identity, i.e. a linear activation)
        or a constant dual.
    """
    if isinstance(act, str):
        act = _activation(act, **params)
    elif params:
        raise ValueError("parameters can only be given with an activation name")
    if not isinstance(act, Activation):
        raise TypeError("limit() needs " + not_an_activation(act).replace(
            "activation must be ", "", 1))
    from .resnet import check_architecture, resnet_limit

    if check_architecture(architecture) == "resnet":
        return resnet_limit(act, branch_exponent)
    dual = act.dual_function
    lead = dual.leading_term()
    identity = lead.power == 1 and lead.coefficient >= 1 - 1e-15
    value_at_zero = float(dual.value(np.array(0.0)))
    c0 = float(dual.derivative(np.array(0.0)))
    m, m_unc, note = _slope_at_one(act)
    try:
        kind, regime, decisions = classify(value_at_zero, c0, m, m_unc, identity=identity)
    except ValueError as exc:
        raise ValueError(f"{act.name}: {exc}") from None
    if note:
        decisions.insert(0, note)
    if act.dual_error > 1e-12:
        decisions.append(f"dual computed numerically, max error {act.dual_error:.2g}")
    alpha = gamma = osc = measured = None
    if regime == "zero":
        point, multiplier = 0.0, c0
        alpha = singular_exponent(c0, m)
        gamma = alpha / 2
        m_series = float(dual.slope_at_one)
        if m_unc > 1e-10 and math.isfinite(m) and m_series > 1:
            spread = abs(singular_exponent(c0, m + m_unc) - alpha)
            decisions.append(
                f"alpha = {alpha:.6g} +- {spread:.2g} from the uncertainty of m; the engine's h "
                f"is that of the truncated series (m = {m_series:.10g}, alpha = "
                f"{singular_exponent(c0, m_series):.6g})"
            )
        if oscillation and m_unc > 1e-10:
            decisions.append(
                "oscillation not measured: the engine's h would be that of the truncated series"
            )
        elif oscillation and math.isfinite(m):
            try:
                osc, measured = measure_singularity(act)
            except (ArithmeticError, ValueError) as exc:  # engine could not converge
                decisions.append(f"oscillation not measured: {exc}")
    elif regime == "superattracting_zero":
        point, multiplier = 0.0, 0.0
    elif regime == "interior":
        point, multiplier = _interior_fixed_point(dual)
        if math.isnan(point):
            decisions.append(
                "attracting fixed point not resolved: the truncated series has no interior "
                "fixed point (its m is below 1)"
            )
        if value_at_zero < 1e-6 and 0 < c0 < 1:
            decisions.append(
                f"dual(0) = {value_at_zero:.2g} is tiny: up to depth ~"
                f"{math.log(value_at_zero) / math.log(c0):.3g} = log dual(0) / log c0 the "
                "network behaves like the singular class"
            )
    elif regime == "parabolic":
        point, multiplier = 1.0, 1.0
    else:
        point, multiplier = 1.0, m
    parity = int(dual.parity)
    dual_minus_one = float(dual.value(np.array(-1.0)))
    return InfiniteDepthLimit(
        activation=act.name,
        kind=kind,
        rule=_RULES[kind],
        regime=regime,
        fixed_point=float(point),
        multiplier=float(multiplier),
        alpha=alpha,
        gamma=gamma,
        oscillation=osc,
        measured_alpha=measured,
        c0=c0,
        m=m,
        m_uncertainty=m_unc,
        value_at_zero=value_at_zero,
        parity=parity,
        dual_at_minus_one=dual_minus_one,
        antipodal=_antipodal(kind, parity, dual_minus_one, m),
        convergence=_convergence(kind, regime),
        explanation=_explanation(kind, regime, alpha, point, m),
        decisions=tuple(decisions),
    )


# --------------------------------------------------------------------------- the rule
def limit_predict(act, X_train, y_train, X_test, **params) -> np.ndarray:
    """Predictions of the infinitely deep network: the limit rule of :func:`limit`.

    Binary labels in {-1, +1}; rows of ``X_train`` and ``X_test`` unit vectors. Ties
    (a zero decision value) are returned as +1. The rule is the one
    ``InfiniteNetworkClassifier(act, depth=math.inf)`` applies (one implementation):

    * singular: sign(sum_i y_i h(<x, x_i>)) with h the Koenigs function (a test point
      equal to training points takes the mean of their labels);
    * nearest_neighbor: the label of the training point with the largest <x, x_i>; for
      an even dual the largest |<x, x_i>|, for an odd dual the largest |<x, x_i>| with
      the label multiplied by sign(<x, x_i>);
    * majority_vote: sign(sum_i y_i) away from the training points;
    * psi_interpolation: sign(c + sum_i b_i psi(<x, x_i>)) with
      [Psi 1; 1^T 0][b; c] = [y; 0], solved as the classifier solves it.
    """
    from .estimators import InfiniteNetworkClassifier
    from .kernels.gram import check_unit_rows

    act = _activation(act, **params) if isinstance(act, str) else act
    X_train = check_unit_rows(X_train, "X_train")
    X_test = check_unit_rows(X_test, "X_test")
    y = np.asarray(y_train, dtype=float).ravel()
    if y.shape[0] != X_train.shape[0]:
        raise ValueError(f"y_train has {y.shape[0]} labels for {X_train.shape[0]} points")
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError("y_train must take values in {-1, +1}")
    clf = InfiniteNetworkClassifier(act, kernel="nngp", depth=math.inf, projection=None)
    decision = clf.fit(X_train, y).decision_function(X_test)  # > 0 means classes_[1] = +1
    return np.where(decision >= 0, 1, -1)
