"""Linear solvers of kernel interpolation: :mod:`.dense` (Cholesky with an
eigendecomposition fallback, complement coordinates, the memory guard) and
:mod:`.eigen_loo` (every ridge's leave-one-out / K-fold residuals from one
eigendecomposition)."""
