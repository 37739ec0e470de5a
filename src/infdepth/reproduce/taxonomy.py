"""Section 4: the taxonomy phase diagram."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .components import MissingComponent

#: Grid resolution of the phase diagram in --quick runs (the full run uses the default).
QUICK_RESOLUTION = 121


def section_taxonomy(out: Path, quick: bool, log: Callable) -> dict:
    """Draw the infinite-depth phase diagram (:func:`infdepth.plots.plot_taxonomy`)."""
    try:
        from ..plots import plot_taxonomy, require_matplotlib

        require_matplotlib()
    except ImportError as exc:
        raise MissingComponent(f"matplotlib is needed for plots ({exc})") from None
    path = out / "taxonomy.png"
    kwargs = {"resolution": QUICK_RESOLUTION} if quick else {}
    plot_taxonomy(path, **kwargs)
    log(f"\n[4] Taxonomy phase diagram written to {path}")
    return dict(plot=str(path.name), function="infdepth.plots.plot_taxonomy")
