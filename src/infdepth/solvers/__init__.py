"""Linear solvers of kernel interpolation: :mod:`.dense` (Cholesky with an
eigendecomposition fallback, complement coordinates, the memory guard)."""
