"""Residual networks: NNGP and NTK at any depth, and the infinite-depth ODE (docs/resnet.md).

The network (inputs x on the unit sphere, width n -> infinity, W entries N(0, 1))::

    h_0 = U x,   h_l = h_{l-1} + beta_L W_l phi(h_{l-1}) / sqrt(n)  (l = 1..L),
    f(x) = v . h_L / sqrt(n),            beta_L = L^(-gamma)  (gamma = branch_exponent).

With V(q)(x, z) = E[phi(u) phi(v)], (u, v) ~ N(0, [[q_xx, q_xz], [q_xz, q_zz]]) and
V'(q) its derivative in q_xz (= E[phi'(u) phi'(v)]), b = beta_L^2:

* NNGP:  q_l = q_{l-1} + b V(q_{l-1}),  q_0 = <x, z>;
* NTK of h_L (input layer and blocks trained):
  Theta_l = Theta_{l-1} + b [V(q_{l-1}) + V'(q_{l-1}) Theta_{l-1}],  Theta_0 = q_0;
  the NTK of f (readout trained too) is Theta_L + q_L, which is what ``kind="ntk"`` is.

On the sphere the diagonal q_l(x, x) is one number per layer, so the normalized kernels
k = q_L(x, z) / q_L(x, x) and (Theta_L + q_L)(x, z) / (Theta_L + q_L)(x, x) are functions
of xi = <x, z> alone, and they are tabulated by the same machinery as the MLP kernels
(:class:`infdepth.kernels.KernelFunction`): only the *depth map* that produces accurate
(sign, log|k|, log(1 - k)) at the table's nodes differs, and it lives here.

The depth map works in normalized, cancellation-free coordinates (docs/resnet.md §3):
rho = q_xz / q_xx and delta = 1 - rho (each with its own recursion, so 1 - k keeps full
relative precision down to 1 - xi = 1e-40), tau = Theta_xx / q_xx, nu = Theta_xz / Theta_xx
and mu = 1 - nu. Each layer needs the dual at the current variance q:
V(q)(x, z) = A(q) D_q(rho) (:func:`infdepth.variance.variance_dual`), lambda = A(q) / q.

At gamma = 1/2 and L = infinity the recursion is the explicit Euler scheme, step 1/L, of
the ODE in depth-time t in [0, 1] (lambda = A(q) / q, m = D_q'(1))::

    dq/dt     = lambda q
    drho/dt   = lambda (D(rho) - rho),        ddelta/dt = lambda (comp(delta) - delta)
    dtau/dt   = lambda (1 + (m - 1) tau)
    dnu/dt    = lambda [(D(rho) - nu) / tau + (D'(rho) - m) nu]
    dmu/dt    = lambda [(comp(delta) - mu) / tau + dcomp(delta) nu]

with comp(d) = 1 - D(1 - d) and dcomp(d) = m - D'(1 - d); it is solved once per table on
the whole node grid by ``scipy.integrate.solve_ivp`` (DOP853, rtol 1e-13).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .kernels.function import KernelFunction, check_depth, check_kind, checked_complements
from .resnet_taxonomy import ResNetLimit, check_branch_exponent, resnet_limit
from .variance import VarianceDual, variance_dual

__all__ = [
    "ARCHITECTURES",
    "check_architecture",
    "check_branch_exponent",
    "ResNetDepthMap",
    "ResNetKernelFunction",
    "resnet_state",
    "resnet_diagonal",
    "ResNetLimit",
    "resnet_limit",
    "MAX_FINITE_DEPTH",
    "resnet_kernel_function",
]

ARCHITECTURES = ("mlp", "resnet")
#: Finite depths are computed by the layer recursion (O(L) work per table) up to this
#: depth; deeper ones raise, except at gamma = 1/2 (below).
MAX_FINITE_DEPTH = 100_000
#: At gamma = 1/2, depths above this come from the ODE and the depths EXTRAPOLATION_BASE
#: and twice it (k_L = k_inf + c1/L + c2/L^2 + ..., docs/resnet.md §5), at O(1) cost.
EXTRAPOLATE_ABOVE = 10_000
EXTRAPOLATION_BASE = 2048
#: Relative tolerance of the depth-infinity ODE solve.
ODE_RTOL = 1e-13


def check_architecture(architecture) -> str:
    """'mlp' or 'resnet'; a clear ValueError otherwise."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    return architecture


class _Variances:
    """A(q), D_q and lambda = A(q) / q, memoized for the last variance asked."""

    def __init__(self, act: Activation) -> None:
        self.act = act
        self.homogeneous = getattr(act, "variance_form", None) == "homogeneous"
        self._q = None
        self._vd: VarianceDual | None = None

    def __call__(self, q: float) -> tuple[float, object]:
        if self.homogeneous:  # A(q) = q, D_q = dphi: no dependence on q at all
            return 1.0, self.act.dual_function
        if q != self._q:
            self._vd = variance_dual(self.act, q)
            self._q = q
        return self._vd.scale / q, self._vd.dual


@dataclass
class ResNetState:
    """Normalized state after the last block: rho = q_xz / q_xx, delta = 1 - rho,
    q = q_xx (the diagonal), tau = Theta_xx / q_xx, nu = Theta_xz / Theta_xx, mu = 1 - nu
    (arrays over the inputs; q and tau scalars; the NTK fields are None for the NNGP)."""

    rho: np.ndarray
    delta: np.ndarray
    q: float
    tau: float | None = None
    nu: np.ndarray | None = None
    mu: np.ndarray | None = None

    def kernel(self, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """(k, 1 - k) of the normalized NNGP or NTK (readout included).

        Where 1 - k < 1/2, k is formed as 1 - (1 - k): the complement coordinates carry
        the input's exact 1 - xi, which rounding xi itself would lose.
        """
        if kind == "nngp":
            k, comp = self.rho, self.delta
        else:
            t = self.tau
            k, comp = (self.nu * t + self.rho) / (t + 1), (self.mu * t + self.delta) / (t + 1)
        return np.where(comp < 0.5, 1.0 - comp, k), comp


def _layer(vars_: _Variances, kind: str, b: float, st: ResNetState) -> ResNetState:
    lam, D = vars_(st.q)
    bl = b * lam
    rho, delta = st.rho, st.delta
    comp = D.complement(delta)
    near = delta < 0.5  # near xi = 1, values come from the exact complements
    Drho = np.where(near, 1.0 - comp, D.value(rho))
    new_rho = (rho + bl * Drho) / (1 + bl)
    new_delta = (delta + bl * comp) / (1 + bl)
    q = st.q * (1 + bl)  # unused for homogeneous phi (may overflow to inf at fixed beta)
    if kind == "nngp":
        return ResNetState(new_rho, new_delta, q)
    m = D.slope_at_one
    tau, mu = st.tau, st.mu
    nu = np.where(st.mu < 0.5, 1.0 - st.mu, st.nu)
    dcomp = D.derivative_complement(delta)
    # dphi' has a square-root singularity at 1 (ReLU): D'(rho) from rho rounded to float
    # would be off by ~sqrt(1e-16); take m - dcomp(delta) there
    Dprime = np.where(near, m - dcomp, D.derivative(rho))
    den = (1 + bl * m) + bl / tau
    new_nu = (nu * (1 + bl * Dprime) + bl * Drho / tau) / den
    new_mu = (mu * (1 + bl * m) + bl * comp / tau + bl * dcomp * nu) / den
    new_tau = (tau * (1 + bl * m) + bl) / (1 + bl)
    return ResNetState(new_rho, new_delta, q, new_tau, new_nu, new_mu)


def _initial(kind: str, xi: np.ndarray, delta: np.ndarray) -> ResNetState:
    xi = np.asarray(xi, dtype=float)
    delta = np.asarray(delta, dtype=float)
    if kind == "nngp":
        return ResNetState(xi.copy(), delta.copy(), 1.0)
    return ResNetState(xi.copy(), delta.copy(), 1.0, 1.0, xi.copy(), delta.copy())


def resnet_state(act: Activation, kind: str, depth, xi, delta=None,
                 branch_exponent: float = 0.5, rtol: float = ODE_RTOL) -> ResNetState:
    """The normalized state after L blocks (L finite: the recursion; L = inf: the ODE).

    ``delta`` = 1 - xi may be passed when known more accurately than by subtraction.
    At ``depth=math.inf`` only gamma = 1/2 is a non-trivial limit: gamma > 1/2 gives the
    input kernel (k = xi exactly), gamma < 1/2 raises (the limit degenerates, see
    :func:`resnet_limit`).
    """
    xi = np.asarray(xi, dtype=float)
    delta = 1.0 - xi if delta is None else np.asarray(delta, dtype=float)
    gamma = check_branch_exponent(branch_exponent)
    st = _initial(kind, xi, delta)
    if depth == 0:
        return st
    if depth == math.inf:
        if gamma > 0.5:
            return st  # L b = L^(1 - 2 gamma) -> 0: every block vanishes
        if gamma < 0.5:
            raise ValueError(resnet_limit(act, gamma).message)
        return _ode(act, kind, st, rtol)
    if depth > EXTRAPOLATE_ABOVE and gamma == 0.5:
        return _extrapolate(act, kind, st, depth, rtol)
    if depth > MAX_FINITE_DEPTH:
        raise ValueError(
            f"finite ResNet depths above {MAX_FINITE_DEPTH} are computed only at "
            f"branch_exponent=0.5 (the layer recursion costs O(L)); got depth {depth} "
            f"with branch_exponent={gamma:g} (docs/resnet.md §5)"
        )
    return _recursion(act, kind, st, int(depth), gamma)


def _recursion(act: Activation, kind: str, st: ResNetState, depth: int,
               gamma: float) -> ResNetState:
    """L blocks of the normalized recursion (docs/resnet.md §3)."""
    vars_ = _Variances(act)
    b = float(depth) ** (-2 * gamma)
    for _ in range(depth):
        st = _layer(vars_, kind, b, st)
    return st


def _extrapolate(act: Activation, kind: str, st: ResNetState, depth: int,
                 rtol: float) -> ResNetState:
    """Depth L >> 1 at gamma = 1/2: y_L = y_inf + c1/L + c2/L^2 fitted through
    y_inf (the ODE) and the depths L0 = EXTRAPOLATION_BASE and 2 L0 (Euler's global error
    has an asymptotic expansion in powers of the step 1/L); error O(L0^-2 / L)."""
    L0 = EXTRAPOLATION_BASE
    inf = _ode(act, kind, st, rtol)
    one = _recursion(act, kind, st, L0, 0.5)
    two = _recursion(act, kind, st, 2 * L0, 0.5)
    r = L0 / depth

    def fit(y_inf, y1, y2):
        if y_inf is None:
            return None
        e1, e2 = y1 - y_inf, y2 - y_inf
        return y_inf + (4 * e2 - e1) * r + 2 * (e1 - 2 * e2) * r * r

    return ResNetState(fit(inf.rho, one.rho, two.rho), fit(inf.delta, one.delta, two.delta),
                       fit(inf.q, one.q, two.q), fit(inf.tau, one.tau, two.tau),
                       fit(inf.nu, one.nu, two.nu), fit(inf.mu, one.mu, two.mu))


def _ode(act: Activation, kind: str, st: ResNetState, rtol: float) -> ResNetState:
    from scipy.integrate import solve_ivp

    vars_ = _Variances(act)
    n = st.rho.size
    odd = act.dual_function.parity == -1
    ntk = kind == "ntk"
    # components: [log q, (tau), rho (n), delta (n), (nu (n), mu (n))]
    head = 2 if ntk else 1
    y0 = [np.array([0.0])]
    if ntk:
        y0.append(np.array([st.tau]))
    y0 += [st.rho.ravel(), st.delta.ravel()]
    if ntk:
        y0 += [st.nu.ravel(), st.mu.ravel()]
    y0 = np.concatenate(y0)
    # absolute tolerances: values that may cross zero (rho, nu; not for odd duals, whose
    # orbits keep their sign and need relative accuracy near 0) get 1e-16; positive
    # complements (delta, mu, tau) and log q are controlled relatively.
    atol = np.full(y0.size, 1e-300)
    atol[0] = 1e-16
    if not odd:
        atol[head:head + n] = 1e-16
        if ntk:
            atol[head + 2 * n:head + 3 * n] = 1e-16

    def rhs(_t, y):
        q = math.exp(y[0])
        lam, D = vars_(q)
        out = np.empty_like(y)
        out[0] = lam
        rho = y[head:head + n]
        delta = y[head + n:head + 2 * n]
        comp = D.complement(np.maximum(delta, 0.0))
        near = delta < 0.5  # values from the exact complements (see _layer)
        Drho = np.where(near, 1.0 - comp, D.value(rho))
        out[head:head + n] = lam * (Drho - rho)
        out[head + n:head + 2 * n] = lam * (comp - delta)
        if ntk:
            m = D.slope_at_one
            tau = y[1]
            mu = y[head + 3 * n:]
            nu = np.where(mu < 0.5, 1.0 - mu, y[head + 2 * n:head + 3 * n])
            dcomp = D.derivative_complement(np.maximum(delta, 0.0))
            Dprime = np.where(near, m - dcomp, D.derivative(rho))
            out[1] = lam * (1 + (m - 1) * tau)
            out[head + 2 * n:head + 3 * n] = lam * ((Drho - nu) / tau + (Dprime - m) * nu)
            out[head + 3 * n:] = lam * ((comp - mu) / tau + dcomp * nu)
        return out

    sol = solve_ivp(rhs, (0.0, 1.0), y0, method="DOP853", rtol=rtol, atol=atol)
    if not sol.success:  # pragma: no cover - the right-hand side is smooth and bounded
        raise RuntimeError(f"the depth-infinity ODE failed: {sol.message}")
    y = sol.y[:, -1]
    shape = st.rho.shape
    rho = y[head:head + n].reshape(shape)
    delta = y[head + n:head + 2 * n].reshape(shape)
    q = math.exp(y[0])
    if not ntk:
        return ResNetState(rho, delta, q)
    return ResNetState(rho, delta, q, float(y[1]), y[head + 2 * n:head + 3 * n].reshape(shape),
                       y[head + 3 * n:].reshape(shape))


def resnet_diagonal(act, kind: str = "ntk", depth=1, branch_exponent: float = 0.5) -> float:
    """The unnormalized kernel at xi = 1: q_L(x, x) (NNGP) or Theta_L + q_L (NTK).

    ``infdepth.nets.ResNet``'s empirical kernels tend to this times the normalized kernel.
    For the normalized ReLU at gamma = 1/2: q = (1 + 1/L)^L -> e and
    Theta_L + q_L -> e (1 + 1) + ... = e (2 + t) at t = 1, i.e. 3e (docs/resnet.md §4).
    """
    from .activations import activation as _activation

    act = _activation(act) if isinstance(act, str) else act
    depth = check_depth(depth)
    vars_ = _Variances(act)
    gamma = check_branch_exponent(branch_exponent)
    if depth == 0:
        return 1.0 if kind == "nngp" else 2.0
    if depth == math.inf:
        if gamma > 0.5:
            return 1.0 if kind == "nngp" else 2.0
        if gamma < 0.5:
            raise ValueError(resnet_limit(act, gamma).message)
        from scipy.integrate import solve_ivp

        def rhs(_t, y):  # y = (q, Theta_xx)
            lam, D = vars_(y[0])
            a = lam * y[0]
            return [a, a + lam * D.slope_at_one * y[1]]

        y = solve_ivp(rhs, (0, 1), [1.0, 1.0], method="DOP853", rtol=1e-13,
                      atol=1e-16).y[:, -1]
        q, theta = float(y[0]), float(y[1])
    else:
        b = float(depth) ** (-2 * gamma)
        q, theta = 1.0, 1.0
        for _ in range(depth):
            lam, D = vars_(q)
            a = lam * q
            q, theta = q + b * a, theta + b * (a + lam * D.slope_at_one * theta)
    return q if kind == "nngp" else q + theta


class ResNetDepthMap:
    """Accurate (sign, log|k|, log(1 - k)) of the normalized ResNet kernel at given xi.

    The object :class:`ResNetKernelFunction` tabulates: one call on all the table's
    nodes is one layer recursion (finite L) or one ODE solve (L = inf).
    """

    def __init__(self, act: Activation, kind: str, depth, branch_exponent: float) -> None:
        self.act, self.kind, self.depth = act, kind, depth
        self.branch_exponent = check_branch_exponent(branch_exponent)

    def __call__(self, xi, delta, eps):
        xi = np.asarray(xi, dtype=float)
        if xi.size == 0:
            empty = np.empty(xi.shape)
            return empty, empty.copy(), empty.copy()
        st = resnet_state(self.act, self.kind, self.depth, xi, delta, self.branch_exponent)
        k, comp = st.kernel(self.kind)
        with np.errstate(divide="ignore", invalid="ignore"):
            sign = np.sign(k)
            logabs = np.log(np.abs(k))
            logcomp = np.log(comp)
        at_one = np.asarray(delta) == 0
        if np.any(at_one):
            sign, logabs = np.where(at_one, 1.0, sign), np.where(at_one, 0.0, logabs)
            logcomp = np.where(at_one, -np.inf, logcomp)
        return sign, logabs, logcomp


class _Parity:
    """The parity the table machinery reads: odd when phi's dual is odd, else none."""

    def __init__(self, parity: int) -> None:
        self.parity = parity


def _resnet_init(fn, act: Activation, kind: str, depth, branch_exponent) -> None:
    fn.activation_name = act.name  # not the activation: see KernelFunction.__init__
    fn.kind = check_kind(kind)
    fn.depth = check_depth(depth)
    fn.architecture = "resnet"
    fn.branch_exponent = check_branch_exponent(branch_exponent)
    if fn.depth == math.inf and fn.branch_exponent < 0.5:
        raise ValueError(resnet_limit(act, fn.branch_exponent).message)
    fn.depth_map = ResNetDepthMap(act, fn.kind, fn.depth, fn.branch_exponent)
    odd = act.dual_function.parity == -1
    # an odd phi gives an odd kernel at every depth (V is odd in q_xz), k ~ c xi at 0
    fn.dual = _Parity(-1 if odd else 0)
    fn.attractor = None
    fn.zero_order = 1 if odd else 0
    fn.zero_at_origin = odd


class ResNetKernelFunction(KernelFunction):
    """The normalized depth-L ResNet NNGP or NTK as a function of xi (L may be inf).

    Same tables and evaluation as :class:`~infdepth.kernels.KernelFunction`; the node
    values come from :class:`ResNetDepthMap`. k(1) = 1 at every depth, including
    infinity (the gamma = 1/2 limit is a kernel, not a singular limit). Values in cells
    where k changes sign are read from the log(1 - k) table (~1e-12 absolute there).
    """

    singular_at_one = False

    def __init__(self, act: Activation, kind: str, depth, branch_exponent: float = 0.5) -> None:
        _resnet_init(self, act, kind, depth, branch_exponent)
        self._ready = False
        self._build()
        self._ready = True

    def _direct(self, xi, delta, eps):
        xi = np.asarray(xi, dtype=float)
        if not self._ready or xi.size == 0:
            return self.depth_map(xi, delta, eps)
        delta = np.asarray(delta, dtype=float)
        eps = np.asarray(eps, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.log(delta / eps)
        q, _, direct = self._complement_table.lookup(s.copy())
        direct |= ~np.isfinite(q)
        sign = np.empty(xi.shape)
        logabs = np.empty(xi.shape)
        logcomp = np.empty(xi.shape)
        ok = ~direct
        k = -np.expm1(q[ok])
        with np.errstate(divide="ignore"):
            sign[ok], logabs[ok], logcomp[ok] = np.sign(k), np.log(np.abs(k)), q[ok]
        if np.any(direct):
            r = self.depth_map(xi[direct], delta[direct], eps[direct])
            sign[direct], logabs[direct], logcomp[direct] = r
        return sign, logabs, logcomp

    def _check_values_exist(self) -> None:
        return None

    def log_complement(self, xi, delta=None, eps=None) -> np.ndarray:
        """log(1 - k(xi))."""
        return self._evaluate(*checked_complements(xi, delta, eps), out="complement")[0]

    def __repr__(self) -> str:
        return (f"ResNetKernelFunction({self.activation_name!r}, kind={self.kind!r}, "
                f"depth={self.depth}, branch_exponent={self.branch_exponent:g})")


def resnet_kernel_function(act: Activation, kind: str, depth, branch_exponent: float):
    """The cached ResNet table of an activation (see :func:`infdepth.kernel_function`)."""
    gamma = check_branch_exponent(branch_exponent)
    if depth == math.inf and gamma > 0.5:
        gamma = 1.0  # every gamma > 1/2 has the same limit: the input kernel xi
    key = ("resnet", kind, depth, gamma)
    table = act._cache.get(key)
    if table is None:
        table = ResNetKernelFunction(act, kind, depth, gamma)
        act._cache[key] = table
    return table
