"""Linear solvers of kernel interpolation: :mod:`.dense` (Cholesky with an
eigendecomposition fallback, complement coordinates, the memory guard) and
:mod:`.iterative` (Nystrom-preconditioned conjugate gradients on a blockwise Gram
operator, in memory, on a torch device or on Dask; O(n (d + s)) memory)."""

from .iterative import DaskGramOperator, GramOperator, IterativeResult, solve

__all__ = ["DaskGramOperator", "GramOperator", "IterativeResult", "solve"]
