"""Depth-L NNGP and NTK kernels, L = 0, 1, ... or infinity, at a cost independent of L.

A depth-L kernel is one function of one variable, the inner product xi (docs/theory.md
section 3). :class:`KernelFunction` tabulates it once per (activation, kind, depth):

1. accurate values at Chebyshev nodes on unit panels of the variable
   ``s = log((1 - xi) / (1 + xi))``, which resolves the steep regions near xi = +-1
   (down to 1 - |xi| = 1e-40), computed by :func:`~infdepth.dynamics.iterate_depth`;
2. the panel interpolants resampled onto a fine uniform grid as piecewise cubic
   Hermite polynomials of ``log|k|`` (of ``log|k / xi|`` when k(0) = 0), and of
   ``log(1 - k)``;
3. arrays are then evaluated by one table lookup and a cubic per entry, whatever
   the depth.

Points outside the table (1 - |xi| < 1e-40) or in a cell where the kernel changes
sign are evaluated directly by the recursion.

Plain values (Gram matrices) take a faster route when numba is installed: a
:class:`GapTable`, cells indexed by the float64 bits of 1 - |xi| and holding k itself
as a cubic (no log, no exp per entry), built from the log-domain table and checked
against it to 1e-10; cells it cannot hold accurately fall back to the log table.
:class:`Kernel` also offers float32 inner products and a torch device backend.

Modules: :mod:`.function` (KernelFunction: one kernel tabulated once), :mod:`.tables` (the
panel fits and cubic cells), :mod:`.gap_table` (GapTable), :mod:`.compiled` (numba reads of
both), :mod:`.api` (the cached kernel function of an activation; ``nngp``, ``ntk``),
:mod:`.gram` (Kernel: Gram matrices), :mod:`.torch_backend` (the same reads on a torch
device).
"""

from __future__ import annotations

from .api import kernel_function, nngp, ntk
from .function import MAX_DEPTH, KernelFunction, check_depth
from .gap_table import (
    GAP_BASE,
    GAP_CELLS,
    GAP_MASK,
    GAP_MIN,
    GAP_SHIFT,
    GAP_TSCALE,
    GapTable,
)
from .gram import Kernel, check_dtype, inner_products

__all__ = ["KernelFunction", "kernel_function", "nngp", "ntk", "Kernel", "check_depth",
           "check_dtype", "inner_products", "GapTable", "MAX_DEPTH", "GAP_BASE", "GAP_CELLS",
           "GAP_MASK", "GAP_MIN", "GAP_SHIFT", "GAP_TSCALE"]
