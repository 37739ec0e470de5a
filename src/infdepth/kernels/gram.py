"""Kernel: Gram matrices of the tabulated kernels on unit-norm data (numpy, numba, torch)."""

from __future__ import annotations

import math

import numpy as np

from .api import kernel_function
from .compiled import compiled_gap_values
from .function import KernelFunction, check_depth

#: Entries per row block of a Gram matrix on the compiled path (one reused buffer).
COMPILED_BLOCK = 1 << 22

#: Pairs with 1 - |<x, z>| below this get 1 -+ <x, z> from the vectors themselves
#: (||x -+ z||^2 / 2), here and in the estimators' passes.
NEAR_GAP = 1e-4
#: With float32 inner products, pairs with 1 - |<x, z>| below this are recomputed in float64.
FLOAT32_NEAR_GAP = 1e-3


class Kernel:
    """Gram matrices of the normalized depth-L NNGP or NTK on unit-norm data.

    ``Kernel(activation, kind="ntk", depth=L)(X, Z)`` returns the n x m matrix
    k(<x_i, z_j>). Rows must be unit vectors (checked). Pairs that are nearly equal
    or nearly antipodal get 1 - xi = ||x - z||^2 / 2 and 1 + xi = ||x + z||^2 / 2
    computed from the vectors themselves, so no digits are lost to cancellation.
    The matrix is computed in row blocks sized by scikit-learn's ``working_memory``.
    Instances are callables ``(X, Z) -> ndarray``, usable directly as
    ``sklearn.svm.SVC(kernel=Kernel(...))`` or ``KernelRidge(kernel="precomputed")``.

    At ``depth=math.inf`` (singular class) the entries are h(<x, z>), the Koenigs
    function of docs/theory.md section 4.1, which is +inf at coincident pairs (x = z: the
    diagonal of ``K(X)``, duplicated rows) and, for an odd dual, -inf at antipodal pairs.
    A kernel method cannot use such entries (``SVC`` fails with "The dual coefficients or
    intercepts are not finite"), so by default the Gram matrix is not returned: a
    ``ValueError`` names the pairs and points to
    ``InfiniteNetworkClassifier(activation, depth=math.inf)``, which applies the
    depth-infinity rule itself (a test point equal to training points takes the mean of
    their labels). ``coincident`` chooses otherwise (docs/theory.md section 4.6).

    Parameters
    ----------
    activation, kind, depth : the kernel (see :func:`kernel_function`).
    architecture, branch_exponent : ``"mlp"`` or ``"resnet"`` with branches scaled by
        L^-branch_exponent (see :func:`kernel_function` and docs/resnet.md).
    dtype : {"float64", "float32"}
        ``"float32"`` computes the inner products in single precision (half the memory
        and about twice the matrix-product speed) and returns a float32 matrix; pairs
        with 1 - |xi| < ``FLOAT32_NEAR_GAP`` (near coincidence, where a float32 inner
        product would move the kernel most) are recomputed in float64 from the vectors.
        Accuracy against float64: see docs/api.md ("Precision").
    device : None, str or torch.device
        None: numpy (and numba, if installed) on the CPU. A torch device such as
        ``"cuda"``: the matrix products and table reads run there (PyTorch required);
        entries needing exact complements are finished on the CPU as above.
    coincident : {"raise", "inf", "nan"}, default="raise"
        Depth infinity only: what the infinite entries (coincident and, for odd duals,
        antipodal pairs) do. "raise": a ValueError naming them; "inf": return them as
        +-inf (``log=True``: log|k| = +inf), for code that handles them; "nan": return NaN
        there, so that any use of them is visible downstream.
    """

    #: Choices of ``coincident``.
    COINCIDENT = ("raise", "inf", "nan")
    #: |xi| above this uses the vectors themselves for 1 -+ xi.
    NEAR = 1 - NEAR_GAP
    #: In float32, pairs with 1 - |xi| below this are computed in float64.
    FLOAT32_NEAR_GAP = FLOAT32_NEAR_GAP

    def __init__(self, activation="relu", kind: str = "ntk", depth=1, *, dtype="float64",
                 device=None, coincident="raise", architecture: str = "mlp",
                 branch_exponent: float = 0.5) -> None:
        self.activation = activation
        self.kind = kind
        self.depth = depth
        self.dtype = dtype
        self.device = device
        self.coincident = coincident
        self.architecture = architecture
        self.branch_exponent = branch_exponent

    @property
    def function(self) -> KernelFunction:
        return kernel_function(self.activation, self.kind, self.depth,
                               architecture=self.architecture,
                               branch_exponent=self.branch_exponent)

    def __call__(self, X, Z=None, *, log: bool = False):
        """Gram matrix (or ``(sign, log|K|)`` with ``log=True``, float64 on the CPU).

        Two 1-D vectors give a scalar (scikit-learn's ``pairwise_kernels`` calls a
        callable kernel that way, one pair at a time: prefer ``kernel="precomputed"``).
        """
        if np.ndim(X) == 1 and Z is not None and np.ndim(Z) == 1:
            value = self(np.atleast_2d(X), np.atleast_2d(Z), log=log)
            return (value[0][0, 0], value[1][0, 0]) if log else float(value[0, 0])
        dtype = check_dtype(self.dtype)
        if self.coincident not in self.COINCIDENT:
            raise ValueError(f"coincident must be one of {self.COINCIDENT}, got "
                             f"{self.coincident!r}")
        X = check_unit_rows(X, "X")
        Z = X if Z is None else check_unit_rows(Z, "Z")
        if X.shape[1] != Z.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features but Z has {Z.shape[1]}")
        fn = self.function
        fn._check_values_exist()
        if X.shape[0] == 0 or Z.shape[0] == 0:  # an empty Gram matrix, of the right shape
            out = np.empty((X.shape[0], Z.shape[0]), dtype=dtype)
            return (out.copy(), out) if log else out
        if log:
            if dtype != "float64" or self.device is not None:
                raise ValueError("log=True is computed in float64 on the CPU: use "
                                 "dtype='float64' and device=None")
            signs, logs = self._log_gram(fn, X, Z)
            self._infinite_entries(logs, signs, Z is X)
            return signs, logs
        out = self.gram_of_unit_rows(X, Z, fn=fn)
        self._infinite_entries(out, None, Z is X)
        return out

    def gram_of_unit_rows(self, X: np.ndarray, Z: np.ndarray, *, fn: KernelFunction | None = None,
                          Xw: np.ndarray | None = None, Zw: np.ndarray | None = None,
                          out_dtype=None) -> np.ndarray:
        """The Gram matrix of rows already checked by :func:`check_unit_rows`, unchecked.

        For passes that call the kernel on many blocks of the same data (the iterative
        solver): no validation and no copy of X or Z per call. ``Xw`` and ``Zw`` are X
        and Z already cast to the working ``dtype`` (float32: saves a cast per call).
        ``out_dtype`` (default: ``dtype``) is the returned matrix's: float64 with
        ``dtype="float32"`` gives float32 inner products with the kernel values written
        in float64, so that products with the matrix accumulate in float64. Finite depth
        only (no ``coincident`` handling).
        """
        dtype = check_dtype(self.dtype)
        fn = self.function if fn is None else fn
        out = np.empty((X.shape[0], Z.shape[0]),
                       dtype=dtype if out_dtype is None else check_dtype(out_dtype))
        if out.size == 0:
            return out
        gap_min = self.FLOAT32_NEAR_GAP if dtype == "float32" else 1.0 - self.NEAR
        if self.device is not None:
            self._device_gram(fn, X, Z, out, gap_min)
        elif dtype == "float32" or compiled_gap_values() is not None:
            self._compiled_gram(fn, X, Z, out, gap_min, Xw, Zw)
        else:
            self._numpy_gram(fn, X, Z, out)
        return out

    def _infinite_entries(self, values: np.ndarray, signs, square: bool) -> None:
        """Apply ``coincident`` to the infinite entries of a depth-infinity Gram matrix."""
        if self.coincident == "inf" or check_depth(self.depth) != math.inf:
            return
        bad = np.isinf(values)
        if not bad.any():
            return
        if self.coincident == "nan":
            values[bad] = np.nan
            if signs is not None:
                signs[bad] = np.nan
            return
        rows, cols = np.nonzero(bad)
        shown = ", ".join(f"({i}, {j})" for i, j in zip(rows[:5], cols[:5], strict=True))
        more = f" and {rows.size - 5} more" if rows.size > 5 else ""
        where = ("the diagonal and any duplicated rows: K(X, X) always has them"
                 if square else "pairs with x = z, or x = -z for an odd dual")
        raise ValueError(
            f"{self!r}: the depth-infinity kernel is infinite at {rows.size} coincident "
            f"(or antipodal) pairs ({where}), e.g. (row, column) {shown}{more}. A kernel "
            "method cannot use an infinite Gram entry (SVC fails with non-finite dual "
            "coefficients). Use InfiniteNetworkClassifier(activation, depth=math.inf), which "
            "applies the depth-infinity rule (coincident points take their training labels), "
            "or a finite depth; pass coincident='inf' or 'nan' to get the matrix anyway."
        )

    def _numpy_gram(self, fn: KernelFunction, X, Z, out) -> None:
        for rows in row_blocks(X.shape[0], Z.shape[0]):
            xi = X[rows] @ Z.T
            np.clip(xi, -1.0, 1.0, out=xi)
            fn._evaluate(xi, None, None, "value", out_array=out[rows])
            xi = xi.reshape(-1)
            near = np.flatnonzero(np.abs(xi) > self.NEAR)
            self._finish(fn, xi[near], near, X[rows], Z, out[rows].reshape(-1),
                         1.0 - self.NEAR)

    def _log_gram(self, fn: KernelFunction, X, Z):
        signs = np.empty((X.shape[0], Z.shape[0]))
        out = np.empty_like(signs)
        for rows in row_blocks(X.shape[0], Z.shape[0]):
            xi, delta, eps = inner_products(X[rows], Z)
            signs[rows], out[rows] = fn.log(xi, delta, eps)
        return signs, out

    def _compiled_gram(self, fn: KernelFunction, X, Z, out, gap_min: float,
                       Xw=None, Zw=None) -> None:
        """The value table by the compiled pass (inner products in ``dtype``, from ``Xw``
        and ``Zw`` if given; values written in ``out``'s dtype); without numba (float32
        only) every entry takes the general path."""
        work = np.dtype(check_dtype(self.dtype))
        if work == np.float64:
            Xw, Zw = X, Z
        else:
            Xw = X.astype(work) if Xw is None else Xw
            Zw = Z.astype(work) if Zw is None else Zw
        blocks = list(row_blocks(X.shape[0], Z.shape[0], COMPILED_BLOCK))
        buffer = np.empty((blocks[0].stop - blocks[0].start, Z.shape[0]), dtype=work)
        compiled = compiled_gap_values() is not None
        for rows in blocks:
            xi = np.matmul(Xw[rows], Zw.T, out=buffer[: rows.stop - rows.start]).reshape(-1)
            block = out[rows].reshape(-1)
            rest = fn._gap_pass(xi, block, gap_min) if compiled else np.arange(xi.size)
            self._finish(fn, xi[rest], rest, X[rows], Z, block, gap_min)

    def _device_gram(self, fn: KernelFunction, X, Z, out, gap_min: float) -> None:
        """The value table read on a torch device; the host finishes NaN entries."""
        from .torch_backend import DeviceArrays, gap_lookup, nan_entries

        arrays = DeviceArrays(self.device, check_dtype(self.dtype))
        Zd = arrays(Z)
        coefs = arrays(fn._gap_table().coefs, exact=True)
        for rows in row_blocks(X.shape[0], Z.shape[0]):
            xi = (arrays.block(X[rows]) @ Zd.T).reshape(-1)
            values = gap_lookup(xi, coefs, fn.zero_order, gap_min)
            block = out[rows].reshape(-1)
            block[:] = values.to(arrays.dtype).cpu().numpy()  # in the output's dtype
            rest = nan_entries(values)
            if rest.size:  # only those inner products come back to the host
                picked = xi[arrays.torch.as_tensor(rest, device=arrays.device)]
                self._finish(fn, picked.cpu().numpy(), rest, X[rows], Z, block, gap_min)

    @staticmethod
    def _finish(fn: KernelFunction, xi: np.ndarray, rest: np.ndarray, x: np.ndarray,
                Z: np.ndarray, out: np.ndarray, gap_min: float) -> None:
        """Entries ``rest`` of a row block x @ Z.T (flat indices, inner products ``xi``):
        pairs with 1 - |xi| < ``gap_min`` from the vectors themselves in float64 (exact
        complements), the others by the general evaluation of the kernel function."""
        if rest.size == 0:
            return
        values = np.clip(xi.astype(np.float64), -1.0, 1.0)
        near = 1.0 - np.abs(values) < gap_min
        far = ~near
        if np.any(far):
            out[rest[far]] = fn._evaluate(values[far], None, None, "value")[0]
        if np.any(near):
            i, j = np.divmod(rest[near], Z.shape[0])
            exact = np.clip(np.einsum("ij,ij->i", x[i], Z[j]), -1.0, 1.0)
            out[rest[near]] = fn(*pair_complements(x[i], Z[j], exact))

    def __repr__(self) -> str:
        extra = "" if self.dtype == "float64" else f", dtype={self.dtype!r}"
        extra += "" if self.device is None else f", device={self.device!r}"
        extra += "" if self.coincident == "raise" else f", coincident={self.coincident!r}"
        if self.architecture != "mlp":
            extra += f", architecture={self.architecture!r}, branch_exponent={self.branch_exponent}"
        return (f"Kernel({self.activation!r}, kind={self.kind!r}, depth={self.depth}"
                f"{extra})")


def check_dtype(dtype) -> str:
    """'float64' or 'float32' from a name or numpy dtype; a clear error otherwise."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return name


#: Rows whose norm is within this of 1 are accepted as unit vectors, and renormalized.
#: One tolerance for every entry point (Kernel, limit_predict, the estimators'
#: ``projection=None``): data normalized in float32 has norm errors of about 1e-7, which a
#: tighter check would reject; renormalizing makes the kernel see exact unit vectors.
UNIT_NORM_TOL = 1e-6


def check_unit_rows(X, name: str, hint: str = "project the data with "
                    "infdepth.SphereProjection or x / ||x||") -> np.ndarray:
    """X as finite float64 rows of norm 1 (within ``UNIT_NORM_TOL``, then renormalized)."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of row vectors, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinity")
    norms = np.sqrt(np.einsum("ij,ij->i", X, X))
    bad = np.abs(norms - 1) > UNIT_NORM_TOL
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"rows of {name} must be unit vectors (row {i} has norm {norms[i]:.6g}); {hint}"
        )
    return X / norms[:, None]


def row_blocks(n: int, m: int, most: int | None = None):
    """Row slices of an n x m matrix sized by scikit-learn's ``working_memory`` (and by
    ``most`` entries per block, if given)."""
    from sklearn import get_config
    from sklearn.utils import gen_batches

    # about five float64 temporaries of the block's size live at once
    rows = max(1, int(get_config()["working_memory"] * 2**20 / (5 * 8 * max(m, 1))))
    if most is not None:
        rows = min(rows, max(1, most // max(m, 1)))
    return gen_batches(n, rows)


def pair_complements(x: np.ndarray, z: np.ndarray, xi: np.ndarray):
    """(xi, ||x - z||^2 / 2, ||x + z||^2 / 2) for paired rows: exact 1 -+ xi."""
    diff = x - z
    summ = x + z
    return xi, np.einsum("ij,ij->i", diff, diff) / 2, np.einsum("ij,ij->i", summ, summ) / 2


def inner_products(X: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(xi, 1 - xi, 1 + xi) for unit rows, the complements exact for near pairs."""
    xi = np.clip(X @ Z.T, -1.0, 1.0)
    delta = 1.0 - xi
    eps = 1.0 + xi
    near = np.abs(xi) > Kernel.NEAR
    if np.any(near):
        i, j = np.nonzero(near)
        _, delta[i, j], eps[i, j] = pair_complements(X[i], Z[j], xi[i, j])
    return xi, delta, eps
