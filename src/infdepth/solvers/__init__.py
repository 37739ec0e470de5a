"""Linear solvers of kernel interpolation: :mod:`.dense` (Cholesky with an
eigendecomposition fallback, complement coordinates, the memory guard),
:mod:`.iterative` (Nystrom-preconditioned conjugate gradients on a blockwise Gram
operator, in memory, on a torch device or on Dask; O(n (d + s)) memory) and
:mod:`.eigen_loo` (every ridge's leave-one-out / K-fold residuals from one
eigendecomposition)."""

from .iterative import DaskGramOperator, GramOperator, IterativeResult, solve

__all__ = ["DaskGramOperator", "GramOperator", "IterativeResult", "solve"]
