"""scikit-learn classifiers: infinitely wide networks of any depth, and the Hilbert kernel rule.

Modules: :mod:`.network` (InfiniteNetworkClassifier), :mod:`.cv`
(InfiniteNetworkClassifierCV, InfiniteNetworkSVC: cross-validated search), :mod:`.hilbert`
(SingularKernelClassifier), :mod:`.projection` (SphereProjection), :mod:`.base` (the shared
machinery: projection, labels, blocked prediction, Dask dispatch), :mod:`.rules` (the rules
and the depth-infinity votes), :mod:`.outputs` (normalized outputs, probabilities),
:mod:`.geometry` and :mod:`.compiled` (test x training inner products, numba passes),
:mod:`.persistence` (activation recipes). The dense solves live in
:mod:`infdepth.solvers.dense`.

:class:`InfiniteNetworkClassifier`
    The classifier an infinitely wide network of depth L computes once trained to zero
    squared loss: kernel interpolation (or kernel ridge regression) with the depth-L NNGP
    or NTK of :mod:`infdepth.kernels`, one-hot targets, argmax. ``depth=math.inf`` gives
    the limiting rule of docs/theory.md section 4, computed directly with no linear solve.
:class:`SingularKernelClassifier`
    The Hilbert / Devroye kernel estimate with weights ``||x - z||^(-alpha)``.
:class:`SphereProjection`
    Standardize, append a bias coordinate, normalize the rows: the inputs these
    classifiers need (they apply it themselves unless told the data is on the sphere).

Outputs
-------
Every classifier computes outputs ``f_c(x)``, one per class: the network's output for the
one-hot target of class c (the kernel-weighted class vote for the depth-infinity rules),
known up to a positive factor per sample (at large depth kernel values under- or overflow,
and only their ratios are kept, in the log domain).

* ``decision_function`` returns ``D(x) = f(x) / N(x)`` with N(x) the output for the
  constant target 1, ``sum_c f_c(x)``, when that is positive (then ``sum_c D_c = 1``: a
  kernel-weighted vote share), and ``max_c |f_c(x)|`` otherwise. Binary problems get the
  usual 1-d ``D_1 - D_0`` (positive means ``classes_[1]``).
* ``predict_proba`` is the Euclidean projection of D(x) onto the probability simplex (for
  two classes: ``p_1 = clip((1 + D_1 - D_0) / 2, 0, 1)``). Squared-loss regression on
  one-hot targets estimates P(y = c | x), so D is already an estimate of the class
  probabilities; the projection only repairs small excursions outside [0, 1] (negative
  kernel weights, interpolation overshoot). For the rules with positive weights (the
  singular kernel rule near data, the Hilbert estimate, nearest neighbour, majority vote)
  it is exactly the normalized kernel weight of each class. The projection preserves the
  order of the classes, so ``argmax predict_proba == predict``.
* The projected share s is then Laplace-smoothed as a vote of the n training labels,
  ``p_c = (n s_c + 1) / (n + K)`` with K classes, so that no class probability is
  exactly 0 or 1: a vote that is merely lopsided (a depth-infinity singular kernel is
  dominated by the nearest training points, odd duals give negative weights that the
  projection clips, 1-NN is one vote) or an interpolant that overshoots must not claim
  certainty. The smoothing is affine, so the order of the classes and ``predict`` do not
  change; for ``majority_vote`` it is the classical add-one estimate (n_c + 1) / (n + K).
  These probabilities are still not calibrated (benchmarks/README.md, "Calibration"
  measures log loss, Brier score and ECE for every rule); for calibrated ones wrap the
  estimator in ``sklearn.calibration.CalibratedClassifierCV`` (``method="temperature"``
  with scikit-learn >= 1.8, or ``"sigmoid"``; both use ``decision_function``), see
  docs/api.md, "Calibrated probabilities".

Linear algebra at finite depth
------------------------------
The Gram matrix (plus ``ridge`` I) is factored by Cholesky. When Cholesky fails or its
reciprocal condition number is below ``n * GRAM_RTOL`` (near-duplicate training points
make condition numbers of 1e18 common at moderate depth), the solver falls back to an
eigendecomposition pseudo-inverse that drops the eigenvalues below ``n * GRAM_RTOL`` times
the largest: the ridge -> 0 limit restricted to the directions the kernel values resolve
(exact duplicates then predict the mean of their labels). ``GRAM_RTOL`` = 1e-12 is the
relative accuracy the kernel tables are built to; an eigenvalue below n times it is
indistinguishable from table error (keeping one would multiply that error by up to 1e12,
and make predictions depend on the order of the training points). The fallback emits an
:class:`IllConditionedGramWarning` and is recorded in ``solver_``; it never returns NaN.

When the kernel tends to 1 everywhere (``dual'(1) <= 1``: ReLU-like activations, and the
softplus-like fourth regime), K = J - E is solved in the coordinates of the complement E =
1 - K, which the engine computes to full relative accuracy: after a Householder reflection
that maps the all-ones vector to a coordinate axis the problem splits into a positive
definite system in E (Cholesky, same fallback) and a scalar. Depth 10^6 for ReLU, or the
depth-infinity limit of the fourth regime (kernel interpolation with the conditionally
negative definite psi, an intercept and the side condition sum(beta) = 0), come out of the
same code.

Memory and speed
----------------
A fit that would need more memory for its n x n matrices (about 72 n^2 bytes at finite
depth) than ``FIT_MEMORY_LIMIT`` (default: the machine's physical memory) raises
``MemoryError`` at once, saying how much it needs. Prediction works in blocks of test
rows sized by scikit-learn's ``working_memory``
(``sklearn.set_config(working_memory=...)`` or ``sklearn.config_context``). With numba
installed, inner products are computed by a fixed-order kernel, so every prediction is
bitwise independent of how the test set is split into blocks (or Dask chunks), and the
depth-infinity kernel rules run a fused pass (inner product, table lookup of the limit
kernel, per-class accumulation) that never stores a test x train matrix.

Dask
----
``predict``, ``predict_proba`` and ``decision_function`` accept a ``dask.array.Array`` and
return one, computed blockwise along the rows; see :mod:`infdepth.distributed`.

Persistence
-----------
Fitted estimators round-trip through pickle, joblib and skops (``skops.io.dump``; load
with ``trusted=skops.io.get_untrusted_types(...)``, which lists infdepth's estimator and
table classes only) and predict bitwise as before. The kernel table predictions use
travels with the estimator (about 2-3 MB), so loading never rebuilds it (a build takes
0.2-10 s); a table already built in the loading process is used instead. Activations are
stored by recipe: built-ins by name and parameters, ``design_activation`` and
``Activation.from_dual_coefficients`` by their dual, ``Activation.from_callable(fn)`` by
``fn``, which must then be a module-level function: a lambda cannot be pickled, and
serializing an estimator that uses one raises a ``pickle.PicklingError`` that says so
(``copy.deepcopy`` and cloudpickle, which Dask and joblib's workers use, still work).
"""

from __future__ import annotations

import sys
import types

from ..solvers import dense as _dense
from ..solvers.dense import FIT_MATRICES, IllConditionedGramWarning
from .cv import InfiniteNetworkClassifierCV, InfiniteNetworkSVC
from .hilbert import SingularKernelClassifier
from .network import InfiniteNetworkClassifier
from .persistence import scaled_call as _scaled_call  # noqa: F401 - pickles before 0.2 name it
from .projection import SphereProjection
from .rules import RULE_ALIASES, RULES, VOTE_RULES

__all__ = [
    "InfiniteNetworkClassifier",
    "InfiniteNetworkClassifierCV",
    "InfiniteNetworkSVC",
    "SingularKernelClassifier",
    "SphereProjection",
    "IllConditionedGramWarning",
    "RULES",
    "RULE_ALIASES",
    "VOTE_RULES",
    "FIT_MATRICES",
    "FIT_MEMORY_LIMIT",
]


class _Knobs(types.ModuleType):
    """``infdepth.estimators.FIT_MEMORY_LIMIT`` reads and sets the dense solver's limit
    (:data:`infdepth.solvers.dense.FIT_MEMORY_LIMIT`), where the memory guard reads it."""

    @property
    def FIT_MEMORY_LIMIT(self) -> int | None:  # noqa: N802 - a module constant's name
        return _dense.FIT_MEMORY_LIMIT

    @FIT_MEMORY_LIMIT.setter
    def FIT_MEMORY_LIMIT(self, value: int | None) -> None:  # noqa: N802
        _dense.FIT_MEMORY_LIMIT = value


sys.modules[__name__].__class__ = _Knobs
