"""InfiniteNetworkClassifier: the trained infinitely wide network of any depth."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import (
    _num_samples,
)

from ..activations import (
    Activation,
    check_informative,
    not_an_activation,
)
from ..activations import activation as _activation
from ..dynamics import find_attractor
from ..kernels import (
    check_depth,
    kernel_function,
)
from ..resnet import check_architecture, check_branch_exponent, resnet_limit
from ..solvers.dense import check_fit_memory, complement_solve, fits_in_memory, spd_solve
from ..taxonomy import RULE_OF_REGIME
from .base import SphereClassifier
from .compiled import FAST_MIN_TRAIN, compiled_kernels
from .geometry import class_sums, pair_geometry, quiet_floats, row_block, segment_sums
from .rules import VoteWeights


# =========================================================================== the network
class InfiniteNetworkClassifier(SphereClassifier):
    """The classifier of an infinitely wide network of any depth, trained on squared loss.

    At finite depth L the trained network predicts ``f(x) = k(x)^T (K + ridge I)^{-1} Y``
    with k the normalized depth-L NNGP or NTK of :mod:`infdepth.kernels`, Y the one-hot
    labels; the class is ``argmax_c f_c(x)``. At ``depth=math.inf`` the limiting rule of
    docs/theory.md section 4 is applied directly, chosen by the dynamics of the dual activation
    (:func:`infdepth.dynamics.find_attractor`):

    ============================  ===================================================
    dual's attractor              rule at depth infinity
    ============================  ===================================================
    0, 0 < dual'(0) < 1           singular kernel rule ``sum_i e_{y_i} h(<x, x_i>)``,
                                  h the Koenigs function (log-domain weights)
    0, dual'(0) = 0               1-nearest neighbour (antipodal points count as
                                  neighbours for even duals, with the opposite label
                                  for odd duals)
    interior point, or 1 with     majority vote (the Gram matrix tends to a multiple
    dual'(1) = 1 (ReLU)           of J plus a multiple of I)
    1 with dual'(1) < 1           interpolation with psi = lim (1 - k) / dual'(1)^L,
    (softplus)                    a conditionally negative definite kernel, plus a
                                  constant (majority vote if ridge > 0)
    dual = xi (linear)            linear-kernel interpolation (depth does not matter)
    ============================  ===================================================

    ``ridge`` does not change the singular and nearest-neighbour limits (the Gram matrix
    tends to the identity). In the majority regimes ridge > 0 turns off the exact
    coincidence exception below (a coincident test point then gets the majority vote; the
    exact ridge limit there mixes its label with the class frequencies), and in the fourth
    regime ridge > 0 gives the majority vote (the Gram matrix tends to J).

    The singular, nearest-neighbour and majority rules need no linear solve: fit is O(n)
    and prediction is one pass over the test x training inner products (the majority rule
    needs none: only exact coincidences are looked up). A test point equal to training
    points (after projection) gets the mean of their one-hot labels exactly, as the limit
    of the interpolating network does.

    Parameters
    ----------
    activation : str or Activation, default="relu"
        A built-in name (``infdepth.BUILTIN_ACTIVATIONS``) or an :class:`~infdepth.Activation`.
    kernel : {"ntk", "nngp"}, default="ntk"
        Neural tangent kernel (all layers trained) or NNGP (last layer only).
    depth : int or math.inf, default=3
        Number of hidden layers L.
    ridge : float, default=0.0
        Ridge added to the diagonal of the normalized Gram matrix (k(x, x) = 1); 0 is
        interpolation (the network trained to zero loss).
    projection : "auto", None or transformer, default="auto"
        "auto" fits a :class:`SphereProjection`; None means the rows are already unit
        vectors (checked to 1e-6 and renormalized); a transformer is cloned, fitted, and
        its output normalized.
    activation_params : dict or None, default=None
        Parameters for a built-in activation, e.g. ``{"a": 2.676}`` for "sine_family".
    dtype, device
        See :class:`~infdepth.kernels.Kernel`.
    architecture : {"mlp", "resnet"}, default="mlp"
        ``"resnet"``: the residual network of docs/resnet.md, branches scaled by
        L^-branch_exponent. At every depth, including ``math.inf`` with
        branch_exponent >= 1/2 (the depth-time ODE kernel; > 1/2: the input kernel), the
        rule is kernel interpolation with its normalized kernel. Below 1/2 the infinitely
        deep ResNet degenerates (:func:`~infdepth.resnet_taxonomy.resnet_limit`, by phi at
        large variance): activations whose limit is the majority vote (linear growth:
        ReLU family, softplus, GELU, SiLU; bounded with a mean: sigmoid) vote, the
        others (erf, tanh, sin: a profile vote) raise; finite depths use the complement
        coordinates.
    branch_exponent : float, default=0.5
        gamma >= 0 in beta_L = L^-gamma (ResNet only).
    solver : {"auto", "dense", "iterative", "dask"}, default="auto"
        Finite depth: "dense" factors the n x n Gram matrix (MemoryError beyond
        ``FIT_MEMORY_LIMIT``); "iterative" solves ``(K + ridge I) A = Y`` by
        Nystrom-preconditioned conjugate gradients (:mod:`infdepth.solvers.iterative`)
        with kernel blocks made on the fly (each entry of K's upper triangle once per
        epoch, on every core), memory O(n (d + s)) for s = min(2000, n / 4) Nystrom
        directions (the top s of 2s sampled columns); "auto": dense while the matrices
        fit, iterative beyond. The iterative
        path supports MLP kernels at finite depth (the ReLU family included: it iterates
        on K itself, not in complement coordinates, so ``rule_`` is "interpolation");
        ResNets and the psi rule raise a ValueError. "dask": the iterative solver with
        each pass over K computed as blocks on the current ``dask.distributed`` client
        (:class:`~infdepth.solvers.iterative.DaskGramOperator`; the iteration stays here,
        only n x n_classes products travel), for training sets whose passes need a cluster.
    tol, max_epochs : float, int, default=1e-6, 200
        Iterative solver: stop when the relative training residual is below ``tol``,
        else a ``ConvergenceWarning`` after ``max_epochs`` epochs (passes over K).
    verbose : int, default=0
        Iterative solver: 1 shows a tqdm bar over epochs (if tqdm is installed), 2 also
        prints the residual and the time of every epoch.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray, only when X has feature names
    projection_ : fitted transformer or None
    X_fit_ : ndarray (n_samples, n_dims)
        Training points on the sphere, sorted by class.
    y_fit_ : ndarray of int
        Class indices of ``X_fit_``.
    attractor_ : str
        Kind of the dual's attracting fixed point (see the table); "resnet" for ResNets.
    rule_ : str
        At finite depth "interpolation", or "complement" (the same interpolation solved in
        complement coordinates 1 - k, used when the kernel tends to 1 with depth: ReLU
        family and softplus); at depth infinity the taxonomy's kind
        (``infdepth.limit(activation).kind``): "singular", "nearest_neighbor",
        "majority_vote" or "psi_interpolation" (see :data:`RULES`).
    dual_coef_ : ndarray (n_samples, n_classes) or None
        Interpolation coefficients (finite depth, and the psi rule).
    intercept_ : ndarray (n_classes,) or None
        Constant term of the complement-coordinate and psi interpolants.
    solver_ : str or None
        "cholesky" or "eigh" (the pseudo-inverse fallback), "cg" (the iterative solver),
        None for the direct rules.
    n_epochs_, residual_ : int, float
        Iterative solver only: epochs run and the final relative training residual.
    n_discarded_ : int
        Eigen-directions dropped by the fallback (0 with Cholesky).

    Examples
    --------
    >>> import math
    >>> from sklearn.datasets import load_iris
    >>> from infdepth.estimators import InfiniteNetworkClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = InfiniteNetworkClassifier("erf", kernel="nngp", depth=math.inf).fit(X, y)
    >>> clf.rule_
    'singular'
    >>> float(clf.score(X, y))
    1.0
    """

    _parameter_constraints: dict = {
        "activation": "no_validation",  # get_activation: names Activation.from_callable(fn)
        "kernel": [StrOptions({"ntk", "nngp"})],
        "depth": "no_validation",  # check_depth: clearer messages (strings, floats, 2^63)
        "ridge": [Interval(numbers.Real, 0, None, closed="left")],
        "projection": [StrOptions({"auto"}), None, HasMethods(["fit", "transform"])],
        "activation_params": [dict, None],
        "dtype": [StrOptions({"float64", "float32"})],
        "device": "no_validation",  # a str or torch.device: checked by the torch backend
        "architecture": [StrOptions({"mlp", "resnet"})],
        "branch_exponent": [Interval(numbers.Real, 0, None, closed="left")],
        "solver": [StrOptions({"auto", "dense", "iterative", "dask"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "verbose": ["verbose"],
    }

    def __init__(self, activation="relu", kernel="ntk", depth=3, ridge=0.0, projection="auto",
                 activation_params=None, dtype="float64", device=None, architecture="mlp",
                 branch_exponent=0.5, solver="auto", tol=1e-6, max_epochs=200, verbose=0):
        self.activation = activation
        self.kernel = kernel
        self.depth = depth
        self.ridge = ridge
        self.projection = projection
        self.activation_params = activation_params
        self.dtype = dtype
        self.device = device
        self.architecture = architecture
        self.branch_exponent = branch_exponent
        self.solver = solver
        self.tol = tol
        self.max_epochs = max_epochs
        self.verbose = verbose

    # ------------------------------------------------------------------ parameters
    def _activation(self) -> Activation:
        shipped = getattr(self, "_cache", {}).get("activation")
        if shipped is not None:  # installed by infdepth.distributed on a worker
            return shipped
        params = self.activation_params or {}
        if isinstance(self.activation, Activation):
            if params:
                raise ValueError("activation_params cannot be used with an Activation instance")
            return self.activation
        if not isinstance(self.activation, str):
            raise ValueError(not_an_activation(self.activation))
        return _activation(self.activation, **params)

    def _check_params(self):
        self._validate_params()  # the declarative constraints above; then what they cannot say
        depth = check_depth(self.depth)  # at most MAX_DEPTH
        ridge = self.ridge
        if not math.isfinite(ridge):
            raise ValueError(f"ridge must be a non-negative finite number, got {ridge!r}")
        return self._activation(), depth, float(ridge)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit on X (n_samples, n_features) and labels y of any type (at least 2 classes)."""
        with quiet_floats():
            return self._fit(X, y)

    def _fit(self, X, y):
        act, depth, ridge = self._check_params()
        attractor, rule, depth = self._plan(act, depth, ridge)
        iterative = self._use_iterative(X, attractor, rule)
        if rule in ("interpolation", "complement", "psi_interpolation") and not iterative:
            try:  # before anything is fitted or built
                n = _num_samples(X)
            except TypeError:  # not array-like: validate_data says so below
                n = 0
            what = ("the psi interpolation" if rule == "psi_interpolation" else
                    f"a depth-{depth} {'ResNet ' if attractor == 'resnet' else ''}fit")
            check_fit_memory(n, what)
        self._fit_common(X, y)
        self.attractor_, self.rule_ = attractor, rule
        self.dual_coef_ = self.intercept_ = self.solver_ = None
        self.n_discarded_ = 0
        self._log_scale = 0.0
        self._ridge = ridge
        if iterative:  # K itself, without complement coordinates (kept well above 0)
            self.rule_ = "interpolation"
            self._fit_iterative(act, depth, ridge)
        elif rule == "interpolation":
            self._fit_interpolation(self._function(depth), ridge)
        elif rule == "complement":
            self._fit_complement(self._function(depth), ridge, infinite=False)
        elif rule == "psi_interpolation":
            self._fit_complement(self._function(math.inf), 0.0, infinite=True)
        return self

    def _plan(self, act: Activation, depth, ridge: float) -> tuple[str, str, float | int]:
        """(attractor_, rule_, depth): the regime of the depth map decides the rule.

        MLP: :func:`~infdepth.dynamics.find_attractor` (the one regime decision, shared
        with :func:`infdepth.limit`); at depth infinity each regime has its rule (class
        docstring), at finite depth the kernel is interpolated, in complement coordinates
        when every kernel value tends to 1. ResNet: :func:`~infdepth.resnet.resnet_limit`.
        """
        if check_architecture(self.architecture) == "resnet":
            gamma = check_branch_exponent(self.branch_exponent)
            if depth == math.inf and gamma < 0.5:
                record = resnet_limit(act, gamma)  # by phi at large variance
                if record.rule != "majority_vote":  # its profile psi is not tabulated
                    raise ValueError(record.message)
                return "resnet", "majority_vote", depth
            return "resnet", ("complement" if gamma < 0.5 else "interpolation"), depth
        kind = find_attractor(check_informative(act).dual_function).kind
        if kind == "identity":
            depth = min(depth, 1)  # the kernel is xi at every depth
        if depth < math.inf:
            return kind, ("complement" if kind in ("one", "parabolic") else "interpolation"), depth
        if kind == "one" and ridge > 0:  # the Gram matrix tends to J: a ridge votes
            return kind, "majority_vote", depth
        return kind, RULE_OF_REGIME[kind], depth

    def _use_iterative(self, X, attractor: str, rule: str) -> bool:
        """Whether this fit takes the iterative path (``solver``, ``_parameter_constraints``
        validate solver / tol / max_epochs)."""
        if not math.isfinite(self.tol):
            raise ValueError(f"tol must be a positive finite number, got {self.tol!r}")
        supported = rule in ("interpolation", "complement") and attractor != "resnet"
        if self.solver in ("iterative", "dask") and not supported:
            raise ValueError(f"solver={self.solver!r} supports MLP kernels at finite depth "
                             "only (not ResNets, not the depth-infinity psi rule, and the "
                             "depth-infinity vote rules need no solve): use solver='dense'")
        if self.solver != "auto" or not supported:
            return self.solver in ("iterative", "dask")
        try:
            n = _num_samples(X)
        except TypeError:
            return False
        return not fits_in_memory(n)

    def _fit_iterative(self, act, depth, ridge):
        from ..solvers.iterative import DaskGramOperator, GramOperator, solve

        kern = self._engine_kernel(act, depth)
        if self.solver == "dask":
            operator = DaskGramOperator(_dask_client(), kern, self.X_fit_, ridge)
        else:
            operator = GramOperator(kern, self.X_fit_, ridge)
        result = solve(operator, self._onehot(), tol=self.tol, max_iter=int(self.max_epochs),
                       verbose=int(self.verbose > 1), progress=self.verbose > 0)
        self.dual_coef_, self.solver_ = result.coef, "cg"
        self.n_epochs_, self.residual_ = result.n_epochs, result.residual


    def _train_pairs(self):
        X = self.X_fit_
        return pair_geometry(X, X, self._train_T())

    def _fit_interpolation(self, fn, ridge):
        sign, logabs = fn.log(*self._train_pairs())
        with np.errstate(under="ignore"):
            K = sign * np.exp(logabs)
        K = (K + K.T) / 2
        K[np.diag_indices_from(K)] += ridge
        self.dual_coef_, self.solver_, self.n_discarded_ = spd_solve(
            K, self._onehot(), f"depth-{self.depth} {self.kernel.upper()} Gram matrix"
        )

    def _fit_complement(self, fn, ridge, infinite):
        log_e = fn.log_complement(*self._train_pairs())
        log_e = np.minimum(log_e, log_e.T)  # symmetric; exact zeros on the diagonal
        np.fill_diagonal(log_e, -np.inf)
        top = float(np.max(log_e))
        if ridge > 0:
            top = max(top, math.log(ridge))
        if not np.isfinite(top):  # every training point is the same point
            top = 0.0
        with np.errstate(under="ignore"):
            E = np.exp(log_e - top)
        if ridge > 0:
            E[np.diag_indices_from(E)] -= math.exp(math.log(ridge) - top)
        t = 0.0 if infinite else math.exp(top)
        c0, beta, self.solver_, self.n_discarded_ = complement_solve(E, self._onehot(), t)
        self._log_scale = top
        self.intercept_, self.dual_coef_ = c0, beta

    # ------------------------------------------------------------------ predict
    def _kernel_depth(self, depth=None):
        """The depth the kernel is evaluated at: ``depth`` (default: the parameter), at
        most 1 when the dual is the identity (the kernel is xi at any depth)."""
        depth = check_depth(self.depth) if depth is None else depth
        return min(depth, 1) if self.attractor_ == "identity" else depth

    def _engine_kernel(self, act, depth=None):
        """The :class:`~infdepth.kernels.Kernel` of the iterative solver's operator and of
        the outputs after an iterative fit (its dtype and device)."""
        from ..kernels import Kernel

        return Kernel(act, self.kernel, self._kernel_depth(depth), dtype=self.dtype,
                      device=self.device)

    def _function(self, depth=None):
        depth = self._kernel_depth(depth)
        if self.attractor_ == "resnet":
            return kernel_function(self._activation(), self.kernel, depth,
                                   architecture="resnet", branch_exponent=self.branch_exponent)
        return kernel_function(self._activation(), self.kernel, depth)

    def _kernel_table_key(self):
        if self.rule_ in ("majority_vote", "nearest_neighbor") or self.attractor_ == "resnet":
            return None  # ResNet tables are rebuilt after unpickling
        return (self.kernel, self._kernel_depth(
            math.inf if self.rule_ in ("singular", "psi_interpolation") else None))

    def _block_rows(self, n_train):
        if self.rule_ == "majority_vote":
            return 1 << 16
        if self.rule_ == "singular" and self.device is None and compiled_kernels() is not None and (
                n_train >= FAST_MIN_TRAIN or self.dtype == "float32"):
            return 4096  # the compiled pass keeps no block-sized temporaries
        return row_block(n_train)

    def _outputs_block(self, Q):
        rule = self.rule_
        if rule == "majority_vote":
            return self._majority(Q)
        if rule == "singular":
            fn = self._function(math.inf)
            weights = VoteWeights(fn.log, self._activation().dual_function.parity,
                               ("h", self.kernel))
            return self._vote_outputs(Q, weights)
        if rule == "nearest_neighbor":
            return self._nearest(Q)
        if self.solver_ == "cg":
            return self._engine_outputs(Q)
        xi, delta, eps = pair_geometry(Q, self.X_fit_, self._train_T())
        if rule == "interpolation":
            fn = self._function()
            sign, logabs = fn.log(xi, delta, eps)
            top = np.max(logabs, axis=1, initial=-np.inf)
            dead = ~np.isfinite(top)
            top = np.where(dead, 0.0, top)
            with np.errstate(under="ignore"):
                W = sign * np.exp(logabs - top[:, None])
            f = class_sums(W, self.dual_coef_)
            if np.any(dead) and self.attractor_ == "superattracting_zero":
                # every kernel value underflows even in log form: the network is at its
                # depth-infinity limit to all representable precision
                f[dead] = self._nearest(Q[dead])
            return f
        fn = self._function(math.inf if rule == "psi_interpolation" else None)
        with np.errstate(under="ignore"):
            e = np.exp(fn.log_complement(xi, delta, eps) - self._log_scale)
        f = self.intercept_[None, :] - class_sums(e, self.dual_coef_)
        if rule == "psi_interpolation":  # exact coincidences: the interpolated labels, exactly
            hit = delta == 0
            if self._activation().dual_function.parity == 1:
                hit |= eps == 0
            rows = np.flatnonzero(np.any(hit, axis=1))
            if rows.size:
                f[rows] = segment_sums(hit[rows].astype(float), self._seg) / np.count_nonzero(
                    hit[rows], axis=1)[:, None]
        return f

    def _engine_outputs(self, Q):
        """``K(Q, X_fit) A`` after an iterative fit: the same compiled Gram pass (and
        dtype, device) that the solve's operator used, so the outputs are those of the
        solved system (not the log-domain path of the dense fits)."""
        kern = self._engine_kernel(self._activation())
        return kern.gram_of_unit_rows(Q, self.X_fit_, out_dtype=np.float64) @ self.dual_coef_

    def _nearest(self, Q):
        """1-NN (depth-infinity limit for dual(0) = dual'(0) = 0), ties averaged."""
        parity = self._activation().dual_function.parity
        xi, delta, eps = pair_geometry(Q, self.X_fit_, self._train_T())
        if parity == 0:
            dist, sign = delta, np.ones_like(delta)
        else:
            dist = np.minimum(delta, eps)
            sign = np.where((eps < delta) & (parity == -1), -1.0, 1.0)
        best = np.min(dist, axis=1, keepdims=True)
        tie = dist == best
        f = segment_sums(np.where(tie, sign, 0.0), self._seg)
        return f / np.count_nonzero(tie, axis=1)[:, None]

    def _majority(self, Q):
        counts = np.diff(self._seg).astype(float)
        f = np.tile(counts / counts.sum(), (Q.shape[0], 1))
        if self._ridge > 0:  # see the class docstring: no exact-coincidence exception
            return f
        table = self._cache.get("rows")
        if table is None:  # cached only once complete (an interrupt leaves no partial table)
            table = {}
            for j, row in enumerate(self.X_fit_ + 0.0):  # + 0.0 merges -0.0 with 0.0
                table.setdefault(row.tobytes(), []).append(j)
            self._cache["rows"] = table
        parity = self._activation().dual_function.parity
        for i, q in enumerate(Q + 0.0):
            hits = [(j, 1.0) for j in table.get(q.tobytes(), ())]
            if parity != 0:
                hits += [(j, float(parity)) for j in table.get((-q + 0.0).tobytes(), ())]
            if hits:
                out = np.zeros(self.classes_.size)
                for j, s in hits:
                    out[self.y_fit_[j]] += s
                f[i] = out / len(hits)
        return f


def _dask_client():
    """The current dask.distributed client (solver="dask"), or a clear error."""
    try:
        from dask.distributed import default_client
    except ImportError as exc:
        raise ImportError("solver='dask' needs dask.distributed: pip install "
                          "'dask[distributed]'") from exc
    try:
        return default_client()
    except ValueError as exc:
        raise ValueError("solver='dask' runs on the current dask.distributed client, and "
                         "there is none: create one first (dask.distributed.Client(...), "
                         "e.g. on a LocalCluster)") from exc
