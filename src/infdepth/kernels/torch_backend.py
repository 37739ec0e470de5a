"""The engine's lookup tables evaluated with PyTorch, on any device (``device="cuda"``).

The tables are built once on the CPU (:class:`~infdepth.kernels.GapTable`); a device
then does the bulk of the work: the inner products of a block as one matrix product
and one table read per entry, with the same cell arithmetic as the compiled CPU pass
(cells from the float64 bits of g = 1 - |xi|). Entries the table leaves to the CPU
(pairs near coincidence, where exact complements ||x -+ z||^2 / 2 are needed, and cells
where the table is not accurate enough) come back as NaN and are finished on the host,
so a device result has the accuracy of the CPU one. Requires the ``torch`` extra.
"""

from __future__ import annotations

import math

import numpy as np

from .gap_table import GAP_BASE, GAP_CELLS, GAP_MASK, GAP_SHIFT, GAP_TSCALE

__all__ = ["resolve_device", "gap_lookup", "DeviceArrays"]


def _torch():
    try:
        import torch
    except ImportError as err:  # torch is an optional extra
        raise ImportError(
            "device=... evaluates kernels with PyTorch, which is not installed: "
            "pip install 'infdepth[torch]' (or device=None for the CPU)"
        ) from err
    return torch


def resolve_device(device):
    """A ``torch.device`` from a name or device, checked to be usable here."""
    torch = _torch()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but PyTorch sees no CUDA GPU "
                         "on this machine; use device=None (the CPU)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} was requested but MPS is not available")
    return dev


def torch_dtype(dtype: str):
    """torch.float32 for "float32", else torch.float64."""
    torch = _torch()
    return torch.float32 if dtype == "float32" else torch.float64


def gap_lookup(xi, coefs, order: int, gap_min: float):
    """Table values at inner products ``xi`` (a tensor): xi^order * cubic(1 - |xi|).

    The arithmetic of :func:`infdepth.kernels._gap_values_py`, vectorized: the cell
    and its variable t come from the float64 bits of g = 1 - |xi|. Entries with
    g < ``gap_min`` or in unusable cells are NaN (the host finishes them).
    """
    torch = _torch()
    x = xi.to(torch.float64)
    gap = (1.0 - x.abs()).contiguous()
    bits = gap.view(torch.int64)
    cell = ((bits >> GAP_SHIFT) - GAP_BASE).clamp(0, GAP_CELLS - 1)
    cell = 4 * (cell + GAP_CELLS * (x < 0).to(torch.int64))
    t = (bits & GAP_MASK).to(torch.float64) * GAP_TSCALE
    value = coefs[cell] + t * (coefs[cell + 1] + t * (coefs[cell + 2] + t * coefs[cell + 3]))
    if order:
        value = value * x**order
    return torch.where(gap >= gap_min, value, torch.full_like(value, math.nan))


class DeviceArrays:
    """Arrays copied to a device once and reused (a training set, a table's coefficients)."""

    def __init__(self, device, dtype: str = "float64") -> None:
        self.torch = _torch()
        self.key = (str(device), dtype)
        self.device = resolve_device(device)
        self.dtype = torch_dtype(dtype)
        self._copies: dict = {}

    def __call__(self, array: np.ndarray, exact: bool = False):
        """The device copy of ``array`` (float64 if ``exact``, else the working dtype)."""
        torch = _torch()
        dtype = torch.float64 if exact else self.dtype
        key = (id(array), dtype)
        if key not in self._copies:
            self._copies[key] = (array, torch.as_tensor(array, dtype=dtype,
                                                        device=self.device))
        return self._copies[key][1]

    def block(self, array: np.ndarray):
        """A one-off copy (a block of test rows), in the working dtype."""
        return _torch().as_tensor(np.ascontiguousarray(array), dtype=self.dtype,
                                  device=self.device)


def nan_entries(values):
    """(flat indices, as numpy) of the NaN entries of a device tensor."""
    torch = _torch()
    return torch.nonzero(torch.isnan(values.reshape(-1))).reshape(-1).cpu().numpy()
