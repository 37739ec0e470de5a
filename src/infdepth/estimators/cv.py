"""InfiniteNetworkClassifierCV: activation, kernel, depth and ridge chosen by an exact
leave-one-out (or K-fold) search; InfiniteNetworkSVC: the NTK-SVM of Arora et al. (2020).

The search follows scikit-learn's ``RidgeCV``: the training data are projected onto the
sphere and their inner products computed once; for every (activation, kernel, depth) the
Gram matrix is the engine's kernel function applied to those inner products
(:func:`infdepth.kernels.kernel_function`, in the log domain, or in complement coordinates
E = 1 - K where K tends to the all-ones matrix), one symmetric eigendecomposition then
scores every ridge (:mod:`infdepth.solvers.eigen_loo`). Depth infinity is scored by its
own rule (singular kernel, nearest neighbour, majority vote or psi interpolation) with
the held-out points removed from the vote: no refit anywhere. On larger data the
candidates go through successive halving (``search="auto"``): scored on a subsample of
at least 30 points first, then on three times as many, only the best third of each round
going on, up to all the points.
"""

from __future__ import annotations

import contextlib
import functools
import math
import numbers
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.model_selection import check_cv
from sklearn.svm import SVC
from sklearn.utils import check_random_state, resample
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _num_samples, check_is_fitted, validate_data

from ..activations import Activation, check_informative
from ..activations import activation as _activation
from ..dynamics import find_attractor
from ..kernels import check_depth, kernel_function
from ..solvers.eigen_loo import SpectralRidge, complement_spectral_ridge, spectral_ridge
from .geometry import pair_geometry, quiet_floats
from .network import InfiniteNetworkClassifier
from .persistence import RECIPE_KEY, activation_from_state, activation_state
from .rules import VoteWeights

__all__ = ["InfiniteNetworkClassifierCV", "InfiniteNetworkSVC", "DEFAULT_DEPTHS",
           "DEFAULT_RIDGES", "DEFAULT_ACTIVATIONS", "DESIGNED", "gram_matrix"]

#: The token for ``design_activation(alpha=D)``, D the training data's intrinsic dimension.
DESIGNED = "designed"
DEFAULT_ACTIVATIONS = ("relu", "erf", DESIGNED)
DEFAULT_DEPTHS = (*range(1, 21), math.inf)
DEFAULT_RIDGES = (0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)

#: Successive halving (``search="halving"``): each round keeps the best third of the
#: (activation, kernel, depth) candidates and triples the points, from a first round of at
#: least HALVING_MIN_POINTS; ``"auto"`` halves a LOO search of at least
#: HALVING_MIN_CANDIDATES candidates on at least HALVING_AUTO_MIN_POINTS points. Measured on
#: 17 of the benchmark's sets (3 folds, at most 1,000 training points), a first round of
#: 30 points rather than 50 moved mean accuracy by +0.09 points (-0.73 to +1.35 per set)
#: and cut magic's tuning time 2.5x; below 150 points the exhaustive search is cheap and
#: is kept.
HALVING_FACTOR = 3
HALVING_MIN_POINTS = 30
HALVING_AUTO_MIN_POINTS = 150
HALVING_MIN_CANDIDATES = 9


def _promoted(alive: list, scores: np.ndarray) -> list:
    """The best ``ceil(len(alive) / HALVING_FACTOR)`` candidates of a round, in grid order.

    ``scores[c, r, s]`` holds (score, squared error) of candidate c, ridge r, split s. A
    candidate's merit is its held-out squared error at its best ridge (every ridge comes
    from the same decomposition), then its best score, then grid order. The squared error
    of the outputs against the one-hot targets (what ``RidgeCV`` minimizes) varies far less
    between subsamples than a 0-1 score on a few dozen points."""
    mean = scores.mean(axis=2)  # (candidates, ridges, 2): mean over splits
    order = np.lexsort((np.arange(len(alive)), -mean[..., 0].max(axis=1),
                        mean[..., 1].min(axis=1)))
    keep = np.sort(order[:math.ceil(len(alive) / HALVING_FACTOR)])
    return [alive[c] for c in keep]


def _accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Fraction of correct labels (``sklearn.metrics.accuracy_score`` without its
    validation overhead, which dominates a search over thousands of candidates)."""
    return float(np.mean(true == pred))


def _balanced_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean per-class recall over the classes present in ``true`` (as
    ``sklearn.metrics.balanced_accuracy_score``)."""
    present = np.unique(true)
    return float(np.mean([np.mean(pred[true == c] == c) for c in present]))


SCORERS = {"accuracy": _accuracy, "balanced_accuracy": _balanced_accuracy}

#: Designed activations kept alive by :func:`designed_activation`. Each carries its kernel
#: tables for the default grid's 41 depths and kernels: about 0.1-0.25 GB (42 tables of
#: 2-8 MB; 1.3 GB from alpha ~ 6 on before the panels next to the dual's zero got tables
#: of their own, when an unbounded cache ran out of memory over the 25-set benchmark and
#: one of 4 held 5 GB). Two keep the outer folds of one data set (alpha is rounded)
#: sharing them.
DESIGN_CACHE = 2


def designed_activation(alpha: float) -> Activation:
    """``design_activation(alpha=a)`` with a rounded to a multiple of 0.25 in [0.5, 32];
    the last ``DESIGN_CACHE`` are cached, so that their kernel tables are built once."""
    return _designed_for(float(min(max(round(float(alpha) * 4) / 4, 0.5), 32.0)))


@functools.lru_cache(maxsize=DESIGN_CACHE)
def _designed_for(alpha: float) -> Activation:
    from ..design import design_activation

    return design_activation(alpha=alpha)


#: glibc's M_MMAP_THRESHOLD (mallopt's parameter -3) and the value :func:`_bounded_heap` fixes.
_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD = -3, 256 * 1024


@functools.cache
def _bounded_heap() -> bool:
    """Fix glibc's mmap threshold at 256 KiB, once per process (Linux; elsewhere nothing).

    glibc raises the threshold each time a large block is freed, after which the search's
    many transient n x n arrays come from the heap, interleaved with long-lived kernel
    tables that pin it: measured, the resident size grew by 0.1-1 GB with every data set
    (24 GiB and out of memory over the 25-set benchmark) while the Python-visible memory
    stayed at 57 MB. With the threshold fixed it stays flat. Returns whether it was set.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD))
    except (OSError, AttributeError):  # not glibc
        return False


def _intrinsic_alpha(Z: np.ndarray) -> float:
    """Intrinsic-dimension estimate (SingularKernelClassifier's), else the ambient one."""
    from .hilbert import intrinsic_dimension

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            alpha = float(intrinsic_dimension(Z, 5000, 0))
    except Exception:  # noqa: BLE001 - optional dependency, tiny or degenerate data
        alpha = float("nan")
    if not (math.isfinite(alpha) and alpha > 0):
        alpha = float(max(Z.shape[1] - 1, 1))
    return alpha


#: Below this many training points the search's many small eigendecompositions run with
#: one BLAS thread: threaded LAPACK on matrices this small is slower, and on a loaded
#: machine (more runnable threads than cores) up to 15x slower (measured: iris, 2 cores).
SMALL_BLAS = 600


def _small_blas(n: int):
    if n >= SMALL_BLAS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _threads(n_jobs, n_tasks: int) -> int:
    """Threads for ``n_tasks`` candidates: ``n_jobs``, None for every CPU this process may
    use, negative as joblib (-1 every CPU, -2 all but one)."""
    from ..solvers.iterative import usable_cpus

    cpus = usable_cpus()
    n = cpus if n_jobs is None else int(n_jobs) if n_jobs > 0 else max(1, cpus + 1 + n_jobs)
    return max(1, min(n, n_tasks))


def _check_grid(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a non-empty sequence, got {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must be a non-empty sequence, got an empty one")
    return values


def _check_ridges(ridges) -> list[float]:
    out = []
    for r in _check_grid("ridges", ridges):
        if isinstance(r, bool) or not isinstance(r, numbers.Real) or not (
                math.isfinite(r) and r >= 0):
            raise ValueError(f"ridges must be non-negative finite numbers, got {r!r}")
        out.append(float(r))
    return out


def _check_depths(depths) -> list:
    out = []
    for d in _check_grid("depths", depths):
        try:
            out.append(check_depth(d))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"depths must be non-negative integers or math.inf, got {d!r}: "
                             f"{exc}") from exc
    return out


def _check_kernels(kernels) -> list[str]:
    out = _check_grid("kernels", kernels)
    for k in out:
        if k not in ("ntk", "nngp"):
            raise ValueError(f"kernels must be 'ntk' or 'nngp', got {k!r}")
    return out


def _resolve_activation(a, Z: np.ndarray) -> Activation:
    if isinstance(a, Activation):
        return a
    if a == DESIGNED:
        return designed_activation(_intrinsic_alpha(Z))
    if not isinstance(a, str):
        raise ValueError(f"activations must be names, Activation instances or "
                         f"{DESIGNED!r}, got {a!r}")
    return _activation(a)


def gram_matrix(act, kind: str, depth, geometry) -> tuple[str, np.ndarray, float]:
    """The training Gram matrix of a finite-depth network from precomputed inner products.

    ``geometry = (xi, 1 - xi, 1 + xi)`` of the training rows. Returns ``(form, M, t)``:
    ``("plain", K, 1)`` with K the normalized kernel, or ``("complement", E, t)`` with
    ``K = J - t E`` (E = (1 - K) / t, zero diagonal, max 1) when the dual's attractor is 1
    (ReLU family, softplus), as ``InfiniteNetworkClassifier`` solves it.
    """
    if not isinstance(act, Activation):
        act = _activation(act)
    kind_attr = find_attractor(check_informative(act).dual_function).kind
    if kind_attr == "identity":
        depth = min(depth, 1)
    fn = kernel_function(act, kind, depth)
    with quiet_floats():
        if kind_attr in ("one", "parabolic"):
            log_e = fn.log_complement(*geometry)
            log_e = np.minimum(log_e, log_e.T)
            np.fill_diagonal(log_e, -np.inf)
            top = float(np.max(log_e))
            if not math.isfinite(top):
                top = 0.0
            return "complement", np.exp(log_e - top), math.exp(top)
        sign, logabs = fn.log(*geometry)
        K = sign * np.exp(logabs)
    return "plain", (K + K.T) / 2, 1.0


# =========================================================================== rules at depth inf
def _combine_votes(sign, logabs, Yc):
    """Class votes from log-domain weights (an infinite weight is decisive), as
    :func:`infdepth.estimators.rules.combine_dense` with one-hot columns Yc."""
    infinite = np.isposinf(logabs)
    hit = np.any(infinite, axis=1)
    finite_log = np.where(infinite, -np.inf, logabs)
    top = np.max(finite_log, axis=1, initial=-np.inf)
    top = np.where(np.isfinite(top), top, 0.0)
    with quiet_floats():
        W = np.where(np.isneginf(finite_log), 0.0, sign * np.exp(finite_log - top[:, None]))
    f = W @ Yc
    if np.any(hit):
        Wi = np.where(infinite[hit], sign[hit], 0.0)
        f[hit] = (Wi @ Yc) / np.count_nonzero(infinite[hit], axis=1)[:, None]
    return f


class _InfiniteRule:
    """Held-out outputs of a depth-infinity rule from the training pairs' geometry."""

    def __init__(self, act: Activation, kind: str, geometry, Y: np.ndarray):
        self.act, self.kind, self.Y = act, kind, Y
        self.xi, self.delta, self.eps = geometry
        self.attractor = find_attractor(check_informative(act).dual_function).kind
        self.parity = act.dual_function.parity
        self._weights = None
        self._psi: SpectralRidge | None = None

    def rule(self, ridge: float) -> str:
        a = self.attractor
        if a == "zero":
            return "singular"
        if a == "superattracting_zero":
            return "nearest_neighbor"
        if a in ("interior", "parabolic") or (a == "one" and ridge > 0):
            return "majority_vote"
        if a == "one":
            return "psi_interpolation"
        return "linear"

    def outputs(self, ridge: float, rows, cols, loo: bool) -> np.ndarray:
        """Outputs on training rows ``rows`` of the rule fitted on ``cols`` (LOO: every
        row, every column but its own)."""
        rule = self.rule(ridge)
        Yc = self.Y[cols]
        ix = np.ix_(rows, cols)
        if rule == "singular":
            if self._weights is None:
                fn = kernel_function(self.act, self.kind, math.inf)
                with quiet_floats():
                    self._weights = VoteWeights(fn.log, self.parity, None)._safe_log_weight(
                        self.xi, self.delta, self.eps)
            sign, logabs = self._weights[0][ix], self._weights[1][ix]
            if loo:
                np.fill_diagonal(logabs, -np.inf)
                np.fill_diagonal(sign, 0.0)
            return _combine_votes(sign, logabs, Yc)
        if rule == "nearest_neighbor":
            delta, eps = self.delta[ix], self.eps[ix]
            if self.parity == 0:
                dist, sign = delta.copy(), np.ones_like(delta)
            else:
                dist = np.minimum(delta, eps)
                sign = np.where((eps < delta) & (self.parity == -1), -1.0, 1.0)
            if loo:
                np.fill_diagonal(dist, np.inf)
            tie = dist == np.min(dist, axis=1, keepdims=True)
            return (np.where(tie, sign, 0.0) @ Yc) / np.count_nonzero(tie, axis=1)[:, None]
        if rule == "majority_vote":
            counts = Yc.sum(axis=0)
            f = np.tile(counts / counts.sum(), (len(rows), 1))
            if loo:
                f = (counts[None, :] - Yc) / (counts.sum() - 1)
            if ridge > 0:
                return f
            hit = (self.delta[ix] == 0).astype(float)
            if self.parity != 0:
                hit += self.parity * (self.eps[ix] == 0)
            if loo:
                np.fill_diagonal(hit, 0.0)
            anyhit = np.any(hit != 0, axis=1)
            if np.any(anyhit):
                f[anyhit] = (hit[anyhit] @ Yc) / np.count_nonzero(hit[anyhit], axis=1)[:, None]
            return f
        raise AssertionError(rule)  # psi and linear go through the spectral path


# =========================================================================== the CV classifier
class InfiniteNetworkClassifierCV(ClassifierMixin, BaseEstimator):
    """:class:`InfiniteNetworkClassifier` with activation, kernel, depth and ridge chosen
    by exact leave-one-out (or K-fold) cross-validation.

    For every (activation, kernel, finite depth) the Gram matrix K of the projected
    training data is decomposed once; with ``G = (K + ridge I)^-1`` and one-hot targets Y
    the leave-one-out residuals are ``(G Y)_i / G_ii`` and the K-fold ones
    ``(G_VV)^-1 (G Y)_V`` for every ridge (:mod:`infdepth.solvers.eigen_loo`). Kernels
    that tend to the all-ones matrix (ReLU family) are decomposed in complement
    coordinates E = 1 - K, the constant direction handled explicitly. Depth infinity is
    scored by its own rule with the held-out points left out of the vote. The candidate
    with the best mean score (the first in ``cv_results_["params"]`` order on ties, as
    ``GridSearchCV``) is refitted on all the data as ``best_estimator_``.

    Parameters
    ----------
    activations : sequence, default=("relu", "erf", "designed")
        Built-in names, :class:`~infdepth.Activation` instances, or ``"designed"``:
        ``design_activation(alpha=D)`` with D the intrinsic-dimension estimate of
        ``SingularKernelClassifier(alpha="auto")`` on the projected training data (rounded
        to a multiple of 0.25). The defaults span the taxonomy's regimes: parabolic (relu,
        majority vote at depth infinity), singular (erf) and a singular kernel matched to
        the data's dimension.
    kernels : sequence of {"ntk", "nngp"}, default=("ntk", "nngp")
    depths : sequence of positive int or math.inf, default=(1, ..., 20, inf)
    ridges : sequence of float >= 0, default=(0, 1e-6, ..., 1)
        0 is interpolation (the network trained to zero loss).
    cv : None, int, or cross-validation splitter, default=None
        None: exact leave-one-out. An int: (Stratified)KFold, as ``check_cv``.
    scoring : {"accuracy", "balanced_accuracy"}, default="accuracy"
    projection : "auto", None or transformer, default="auto"
        As :class:`InfiniteNetworkClassifier`.
    n_jobs : int or None, default=None
        Threads over the (activation, kernel, depth) candidates, each with one BLAS
        thread (the eigendecompositions release the GIL). None: every CPU this process may
        use (as the iterative solver's operators); negative as joblib (-1 every CPU).
        Below ``SMALL_BLAS`` points the scores are the same for any n_jobs (every
        candidate is computed on one BLAS thread either way).
    search : {"auto", "exhaustive", "halving"}, default="auto"
        "exhaustive" scores every candidate on all the points. "halving" is successive
        halving (as scikit-learn's ``HalvingGridSearchCV``, with points as the resource):
        every (activation, kernel, depth) is scored, all ridges at once, on a stratified
        subsample of ``n // 3^R >= HALVING_MIN_POINTS`` points; the best third (by
        held-out squared error at its best ridge, cv_results_'s
        ``mean_test_squared_error``, then by score) goes on to three times the points, and
        so on up to all n. A decomposition of m points costs (m / n)^3 of one of n, so
        after R halvings C candidates cost about 1.1 C / 3^R full decompositions instead
        of C (the C / 3^R of the last round dominate). "auto": halving for a
        leave-one-out search (``cv=None``) of at least ``HALVING_MIN_CANDIDATES``
        candidates on at least ``HALVING_AUTO_MIN_POINTS`` (150) points, exhaustive
        otherwise.
    random_state : int, RandomState or None, default=0
        The subsamples of the halving rounds (fixed by default: a fit is repeatable).

    Attributes
    ----------
    activation_, kernel_, depth_, ridge_ : the selected parameters
    best_params_ : dict
        Keyword arguments of :class:`InfiniteNetworkClassifier` (with the resolved
        activation) for the selected candidate.
    best_score_ : float
    best_index_ : int
    cv_results_ : dict of arrays
        GridSearchCV's layout: ``params``, ``param_<name>``, ``split<k>_test_score`` (K-fold
        only), ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        ``mean_fit_time`` (search time per candidate), ``rule`` (the rule scored),
        ``mean_test_squared_error`` (of the held-out outputs, a rule's as vote fractions), and
        HalvingGridSearchCV's ``iter`` and ``n_resources`` (round, points in it): one
        row per candidate and round it reached, the last round's rows ranked first.
    n_resources_, n_candidates_ : list of int
        Points and (activation, kernel, depth) candidates per round (one round when
        exhaustive).
    n_iterations_ : int
    best_estimator_ : InfiniteNetworkClassifier
    classes_, n_features_in_, n_splits_
    """

    _parameter_constraints: dict = {
        "activations": ["array-like"],
        "kernels": ["array-like"],
        "depths": ["array-like"],
        "ridges": ["array-like"],
        "cv": ["cv_object"],
        "scoring": [StrOptions(set(SCORERS))],
        "projection": [StrOptions({"auto"}), None, HasMethods(["fit", "transform"])],
        "n_jobs": [numbers.Integral, None],
        "search": [StrOptions({"auto", "exhaustive", "halving"})],
        "random_state": ["random_state"],
    }

    def __init__(self, activations=DEFAULT_ACTIVATIONS, kernels=("ntk", "nngp"),
                 depths=DEFAULT_DEPTHS, ridges=DEFAULT_RIDGES, cv=None, scoring="accuracy",
                 projection="auto", n_jobs=None, search="auto", random_state=0):
        self.activations = activations
        self.kernels = kernels
        self.depths = depths
        self.ridges = ridges
        self.cv = cv
        self.scoring = scoring
        self.projection = projection
        self.n_jobs = n_jobs
        self.search = search
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Search the grid by cross-validation, then refit the best candidate on (X, y)."""
        if self.n_jobs == 0:
            raise ValueError("n_jobs == 0 has no meaning: use None, a positive number of "
                             "threads, or -1 for every CPU")
        _bounded_heap()
        with _small_blas(_num_samples(X)):
            return self._fit(X, y)

    def _fit(self, X, y):
        activations = _check_grid("activations", self.activations)
        kernels = _check_kernels(self.kernels)
        depths = _check_depths(self.depths)
        ridges = _check_ridges(self.ridges)
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        helper = InfiniteNetworkClassifier(projection=self.projection)
        helper._fit_common(X, y)  # the estimator's own projection and label checks
        Z = helper._to_sphere(X)
        classes, codes = np.unique(y, return_inverse=True)
        Y = np.zeros((len(y), classes.size))
        Y[np.arange(len(y)), codes] = 1.0
        loo = self.cv is None
        if loo:
            splits = None
            self.n_splits_ = len(y)
        else:
            cv = check_cv(self.cv, y, classifier=True)
            splits = [(np.asarray(tr), np.asarray(va)) for tr, va in cv.split(X, y)]
            self.n_splits_ = len(splits)
        scorer = SCORERS[self.scoring]
        resolved = [_resolve_activation(a, helper.X_fit_) for a in activations]
        with quiet_floats():
            geometry = pair_geometry(Z, Z, np.ascontiguousarray(Z.T))
        grid = list(np.ndindex(len(resolved), len(depths), len(kernels)))
        schedule = self._schedule(len(y), len(grid), loo)
        rng = check_random_state(self.random_state)
        alive, rounds = grid, []
        for it, m in enumerate(schedule):
            if m < len(y):  # a stratified subsample, scored by its own LOO or K-fold
                rows = np.sort(resample(np.arange(len(y)), n_samples=m, replace=False,
                                        stratify=codes, random_state=rng))
                sub = np.ix_(rows, rows)
                round_splits = None if loo else [
                    (np.asarray(tr), np.asarray(va)) for tr, va in
                    check_cv(self.cv, y[rows], classifier=True).split(Z[rows], y[rows])]
                data = (tuple(g[sub] for g in geometry), Y[rows], codes[rows], round_splits)
            else:
                data = (geometry, Y, codes, splits)
            result = self._score_round(alive, resolved, depths, kernels, ridges, data, scorer)
            rounds.append((it, m, alive, *result))
            if it + 1 < len(schedule):
                alive = _promoted(alive, result[0])
        self._store_results(activations, depths, kernels, ridges, rounds, loo)
        self.n_resources_ = list(schedule)
        self.n_candidates_ = [len(r[2]) for r in rounds]
        self.n_iterations_ = len(rounds)
        best = self.cv_results_["params"][self.best_index_]
        chosen = best["activation"]
        self.activation_ = (resolved[activations.index(chosen)] if chosen == DESIGNED
                            else chosen)  # a built-in stays a name
        self.kernel_, self.depth_, self.ridge_ = best["kernel"], best["depth"], best["ridge"]
        self.best_params_ = {"activation": self.activation_, "kernel": self.kernel_,
                             "depth": self.depth_, "ridge": self.ridge_}
        self.best_estimator_ = InfiniteNetworkClassifier(
            projection=self.projection, **self.best_params_).fit(X, y)
        self.classes_ = self.best_estimator_.classes_
        return self

    def _schedule(self, n: int, n_candidates: int, loo: bool) -> list[int]:
        """Points per round: ``[n]`` for an exhaustive search; successive halving's
        ``n // 3^R, ..., n // 3, n`` with the smallest round at least ``HALVING_MIN_POINTS``."""
        search = self.search
        if search == "auto":
            search = ("halving" if loo and n_candidates >= HALVING_MIN_CANDIDATES
                      and n >= HALVING_AUTO_MIN_POINTS else "exhaustive")
        if search == "exhaustive":
            return [n]
        if not (loo or isinstance(self.cv, numbers.Integral) or hasattr(self.cv, "split")):
            raise ValueError("search='halving' needs cv=None, an int or a splitter: fixed "
                             "index splits cannot be applied to the rounds' subsamples")
        R = 0
        while n // HALVING_FACTOR ** (R + 1) >= HALVING_MIN_POINTS:
            R += 1
        return [n // HALVING_FACTOR ** (R - i) for i in range(R)] + [n]

    def _score_round(self, alive, resolved, depths, kernels, ridges, data, scorer):
        """Scores (candidates, ridges, splits), times (candidates, ridges) and rules of
        the (activation, depth, kernel) candidates ``alive`` on one round's points."""
        geometry, Y, codes, splits = data
        loo = splits is None
        n_split = 1 if loo else len(splits)
        scores = np.zeros((len(alive), len(ridges), n_split, 2))  # (score, squared error)
        times = np.zeros(scores.shape[:2])
        rules = np.empty(scores.shape[:2], dtype=object)

        def score(F, rows, votes=False):
            """(score, mean squared error of F against the one-hot targets); a rule's
            votes are made fractions first (every row's |votes| summing to 1)."""
            if votes:
                total = np.sum(np.abs(F), axis=1, keepdims=True)
                F = F / np.where(total > 0, total, 1.0)
            sq = float(np.mean(np.sum((Y[rows] - F) ** 2, axis=1)))
            return np.array([scorer(codes[rows], np.argmax(F, axis=1)), sq])

        everything = np.arange(len(codes))
        inf_rules = {(a, k): _InfiniteRule(resolved[a], kernels[k], geometry, Y)
                     for a in range(len(resolved)) for k in range(len(kernels))}

        def candidate(c: int) -> None:
            """Scores of every ridge for candidate c = (activation a, depth d, kernel k)."""
            a, d, k = alive[c]
            act, depth, kind = resolved[a], depths[d], kernels[k]
            start = time.perf_counter()
            rule = inf_rules[(a, k)]
            rule0 = rule.rule(0.0)
            eff = 1 if rule0 == "linear" else depth  # the kernel is xi at any depth
            if eff < math.inf or rule0 == "psi_interpolation":
                self._score_spectral(act, kind, eff, geometry, Y, ridges, splits,
                                     score, scores[c], rules[c])
            else:
                done: dict[tuple, np.ndarray] = {}
                for r, ridge in enumerate(ridges):
                    key = (rule.rule(ridge), ridge > 0)
                    if key[0] != "majority_vote":
                        key = (key[0], False)
                    if key not in done:
                        if loo:
                            F = rule.outputs(ridge, everything, everything, True)
                            done[key] = np.array([score(F, everything, True)])
                        else:
                            done[key] = np.array([
                                score(rule.outputs(ridge, va, tr, False), va, True)
                                for tr, va in splits])
                    scores[c, r] = done[key]
                    rules[c, r] = rule.rule(ridge)
            times[c] = (time.perf_counter() - start) / len(ridges)

        n_jobs = _threads(self.n_jobs, len(alive))
        if n_jobs == 1:
            for c in range(len(alive)):
                candidate(c)
        else:  # one candidate per thread (LAPACK releases the GIL), BLAS on one thread each
            from concurrent.futures import ThreadPoolExecutor

            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(n_jobs) as pool:
                for future in [pool.submit(candidate, c) for c in range(len(alive))]:
                    future.result()
        return scores, times, rules

    @staticmethod
    def _score_spectral(act, kind, depth, geometry, Y, ridges, splits, score, out, rules):
        """Scores of every ridge for one finite-depth Gram matrix (or the psi limit)."""
        if depth == math.inf:  # psi interpolation (ridge 0) or majority vote (ridge > 0)
            fn = kernel_function(act, kind, math.inf)
            with quiet_floats():
                log_e = fn.log_complement(*geometry)
            log_e = np.minimum(log_e, log_e.T)
            np.fill_diagonal(log_e, -np.inf)
            top = float(np.max(log_e))
            system = complement_spectral_ridge(np.exp(log_e - (top if math.isfinite(top)
                                                               else 0.0)), 0.0)
            lams = [0.0]
        else:
            form, M, t = gram_matrix(act, kind, depth, geometry)
            system = spectral_ridge(M) if form == "plain" else complement_spectral_ridge(M, t)
            lams = ridges
        if splits is None:
            rows = np.arange(Y.shape[0])
            res = system.loo_residuals(Y, lams)
            vals = [np.array([score(Y - e, rows)]) for e in res]
        else:
            res = system.fold_residuals(Y, lams, [va for _, va in splits])
            vals = [np.array([score(Y[va] - res[f][j], va) for f, (_, va) in
                              enumerate(splits)]) for j in range(len(lams))]
        for r, ridge in enumerate(ridges):
            if depth == math.inf and ridge > 0:  # the majority vote
                counts_rule = _InfiniteRule(act, kind, geometry, Y)
                if splits is None:
                    rows = np.arange(Y.shape[0])
                    F = counts_rule.outputs(ridge, rows, rows, True)
                    out[r] = [score(F, rows, True)]
                else:
                    out[r] = [score(counts_rule.outputs(ridge, va, tr, False), va, True)
                              for tr, va in splits]
                rules[r] = "majority_vote"
            else:
                out[r] = vals[0 if depth == math.inf else r]
                rules[r] = ("psi_interpolation" if depth == math.inf else
                            "complement" if system.h1 is not None else "interpolation")

    def _store_results(self, activations, depths, kernels, ridges, rounds, loo):
        """cv_results_ in GridSearchCV's layout, one row per (candidate, ridge) and round
        (HalvingGridSearchCV's ``iter`` and ``n_resources``); rows of the last round rank
        first, then the earlier rounds', latest first."""
        params, cols = [], {n: [] for n in ("activation", "depth", "kernel", "ridge")}
        flat, fit_time, rule_col, iters, resources = [], [], [], [], []
        for it, m, alive, scores, times, rules in rounds:
            for c, (a, d, k) in enumerate(alive):
                for r, ridge in enumerate(ridges):
                    values = (activations[a], depths[d], kernels[k], ridge)
                    params.append(dict(zip(cols, values, strict=True)))
                    for n, v in zip(cols, values, strict=True):
                        cols[n].append(v)
                    flat.append(scores[c, r])
                    fit_time.append(times[c, r])
                    rule_col.append(rules[c, r])
                    iters.append(it)
                    resources.append(m)
        both = np.array(flat)  # (rows, splits, 2): score and squared error
        flat, squared = both[..., 0], both[..., 1]
        results: dict[str, Any] = {"params": params}
        for n, v in cols.items():
            results[f"param_{n}"] = np.ma.MaskedArray(np.array(v, dtype=object),
                                                      mask=False)
        if not loo:
            for s in range(flat.shape[1]):
                results[f"split{s}_test_score"] = flat[:, s]
        mean = flat.mean(axis=1)
        results["mean_test_score"] = mean
        results["std_test_score"] = flat.std(axis=1)
        results["mean_test_squared_error"] = squared.mean(axis=1)
        results["iter"] = np.array(iters)
        results["n_resources"] = np.array(resources)
        # scores lie in [0, 1], so 2 iter + score orders by round first, then by score
        results["rank_test_score"] = rankdata(-(2.0 * results["iter"] + mean),
                                              method="min").astype(np.int32)
        results["mean_fit_time"] = np.array(fit_time)
        results["rule"] = np.array(rule_col, dtype=object)
        self.cv_results_ = results
        self.best_index_ = int(np.argmin(results["rank_test_score"]))
        self.best_score_ = float(mean[self.best_index_])

    # ------------------------------------------------------------------ persistence
    def __getstate__(self):
        state = dict(super().__getstate__())
        for key in ("activation_", "best_params_"):
            value = state.get(key)
            if key == "best_params_" and value is not None:
                value = dict(value)
                if isinstance(value["activation"], Activation):
                    value["activation"] = activation_state(value["activation"],
                                                           type(self).__name__)
            elif isinstance(value, Activation):
                value = activation_state(value, type(self).__name__)
            if value is not None:
                state[key] = value
        if isinstance(state.get("activations"), (list, tuple)):
            state["activations"] = type(state["activations"])(
                activation_state(a, type(self).__name__) if isinstance(a, Activation) else a
                for a in state["activations"])
        return state

    def __setstate__(self, state):
        state = dict(state)

        def load(v):
            return (activation_from_state(v) if isinstance(v, dict) and RECIPE_KEY in v
                    else v)

        state["activation_"] = load(state.get("activation_"))
        if isinstance(state.get("best_params_"), dict):
            state["best_params_"] = {k: load(v) for k, v in state["best_params_"].items()}
        if isinstance(state.get("activations"), (list, tuple)):
            state["activations"] = type(state["activations"])(load(a)
                                                              for a in state["activations"])
        if state["activation_"] is None:
            del state["activation_"]
        super().__setstate__(state)

    # ------------------------------------------------------------------ predict
    def _checked(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=np.float64, reset=False)

    def predict(self, X):
        """Labels of the refitted best model."""
        X = self._checked(X)
        return self.best_estimator_.predict(X)

    def predict_proba(self, X):
        """Class probabilities of the refitted best model."""
        X = self._checked(X)
        return self.best_estimator_.predict_proba(X)

    def decision_function(self, X):
        """Normalized outputs of the refitted best model."""
        X = self._checked(X)
        return self.best_estimator_.decision_function(X)


# =========================================================================== NTK-SVM
class InfiniteNetworkSVC(ClassifierMixin, BaseEstimator):
    """The NTK-SVM of Arora et al. (ICLR 2020): ``SVC(kernel="precomputed")`` on the
    depth-L NTK/NNGP Gram matrix, depth and C chosen by K-fold CV.

    The Gram matrix of each depth is computed once from the projected data's inner
    products (:func:`gram_matrix`, the same matrices :class:`InfiniteNetworkClassifierCV`
    decomposes) and reused for every C and fold. Where the kernel tends to the all-ones
    matrix (ReLU family) the SVM is given ``K - 1 = -t E`` instead of K: the dual's
    constraint ``sum_i alpha_i y_i = 0`` makes the SVM blind to a constant added to the
    kernel, so the solution is the same and no digit of E is lost. Depth infinity is not
    a kernel an SVM can use (infinite diagonal or constant) and is not searched.

    Parameters
    ----------
    activation : str or Activation, default="relu"
    kernel : {"ntk", "nngp"}, default="ntk"
    depths : sequence of positive int, default=(1, ..., 20)
    Cs : sequence of float > 0, default=(0.01, 0.1, 1, 10, 100, 1000)
    cv : int or splitter, default=5
    projection : "auto", None or transformer, default="auto"

    Attributes
    ----------
    depth_, C_, best_score_, cv_results_ (``params``, ``mean_test_score``), svc_,
    classes_, n_features_in_
    """

    _parameter_constraints: dict = {
        "activation": "no_validation",  # get_activation: names Activation.from_callable(fn)
        "kernel": [StrOptions({"ntk", "nngp"})],
        "depths": ["array-like"],
        "Cs": ["array-like"],
        "cv": ["cv_object"],
        "projection": [StrOptions({"auto"}), None, HasMethods(["fit", "transform"])],
    }

    def __init__(self, activation="relu", kernel="ntk", depths=tuple(range(1, 21)),
                 Cs=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0), cv=5, projection="auto"):  # noqa: N803
        self.activation = activation
        self.kernel = kernel
        self.depths = depths
        self.Cs = Cs
        self.cv = cv
        self.projection = projection

    def _act(self) -> Activation:
        return self.activation if isinstance(self.activation, Activation) else _activation(
            self.activation)

    def _gram(self, geometry):
        form, M, t = gram_matrix(self._act(), self.kernel, self.depth_, geometry)
        return M if form == "plain" else -t * M

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Choose (depth, C) by CV on precomputed Gram matrices, refit the SVC."""
        with _small_blas(_num_samples(X)):
            return self._fit(X, y)

    def _fit(self, X, y):
        depths = _check_depths(self.depths)
        if math.inf in depths:
            raise ValueError("depths must be finite for the SVM (depth infinity is not a "
                             "usable kernel); use InfiniteNetworkClassifierCV for it")
        Cs = _check_grid("Cs", self.Cs)
        if any(isinstance(c, bool) or not isinstance(c, numbers.Real) or not c > 0
               for c in Cs):
            raise ValueError(f"Cs must be positive numbers, got {self.Cs!r}")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        helper = InfiniteNetworkClassifier(projection=self.projection)
        helper._fit_common(X, y)
        self.projection_ = helper.projection_
        Z = helper._to_sphere(X)
        self.X_fit_ = Z
        splits = list(check_cv(self.cv, y, classifier=True).split(X, y))
        with quiet_floats():
            geometry = pair_geometry(Z, Z, np.ascontiguousarray(Z.T))
        params, means = [], []
        for depth in depths:
            self.depth_ = depth
            K = self._gram(geometry)
            for C in Cs:
                accs = [SVC(kernel="precomputed", C=float(C)).fit(K[np.ix_(tr, tr)], y[tr])
                        .score(K[np.ix_(va, tr)], y[va]) for tr, va in splits]
                params.append({"depth": depth, "C": float(C)})
                means.append(float(np.mean(accs)))
        means_arr = np.array(means)
        self.cv_results_ = {"params": params, "mean_test_score": means_arr,
                            "rank_test_score": rankdata(-means_arr, method="min")}
        best = params[int(np.argmax(means_arr))]
        self.depth_, self.C_ = best["depth"], best["C"]
        self.best_score_ = float(np.max(means_arr))
        self.svc_ = SVC(kernel="precomputed", C=self.C_).fit(self._gram(geometry), y)
        self.classes_ = self.svc_.classes_
        return self

    def _test_gram(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        helper = InfiniteNetworkClassifier(projection=self.projection)
        helper.projection_ = self.projection_
        Q = helper._to_sphere(X)
        with quiet_floats():
            geometry = pair_geometry(Q, self.X_fit_, np.ascontiguousarray(self.X_fit_.T))
        act = self._act()
        kind_attr = find_attractor(check_informative(act).dual_function).kind
        fn = kernel_function(act, self.kernel, min(self.depth_, 1) if kind_attr == "identity"
                             else self.depth_)
        with quiet_floats():
            if kind_attr in ("one", "parabolic"):
                return -np.exp(fn.log_complement(*geometry))
            sign, logabs = fn.log(*geometry)
            return sign * np.exp(logabs)

    def predict(self, X):
        """SVC labels on the test x training kernel."""
        return self.svc_.predict(self._test_gram(X))

    def decision_function(self, X):
        """SVC decision values."""
        return self.svc_.decision_function(self._test_gram(X))
