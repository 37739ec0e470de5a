"""Sizes of the reproduce job: the full run, --quick, and overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any

#: The sine family of the paper: dual sinh(a xi) / sinh(a), alpha close to 2, 4 and 8.
SINE_FAMILY = (2.676, 6.13539, 13.8258)


# ---------------------------------------------------------------------------------------
# Sizes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Every size the reproduction uses; :data:`FULL` and :data:`QUICK` are the presets.

    Attributes
    ----------
    dimensions : ambient dimensions d of the synthetic tasks (section 1).
    n_train, n_test : sample sizes of section 1.
    finite_depths : NTK depths of the finite-depth networks of section 1.
    finite_n_train : training points used by the finite-depth networks of section 1 (a
        dense n x n solve); None means ``n_train``.
    consistency_dimensions, consistency_ns, consistency_seeds, consistency_n_test :
        section 2.
    consistency_solve_cap : largest n at which the methods that need a dense n x n solve
        (the finite-depth ReLU network, the psi rule) are fitted in section 2; the
        depth-infinity vote rules, the Hilbert estimate and 1-NN run at every n (the full
        run: up to 10^6 training points, 5 seeds).
    consistency_relu_depth : its depth.
    regression_dimension, regression_n_train, regression_n_test, regression_depths,
    regression_seeds : section 3.
    resnet_dimensions, resnet_n_train, resnet_n_test, resnet_real_sets, resnet_mlp_depths,
    resnet_depths, resnet_phase_depths : section 5 (finite depths; infinity is always added).
    """

    dimensions: tuple[int, ...] = (2, 3, 5, 9)
    n_train: int = 10_000
    n_test: int = 10_000
    finite_depths: tuple[int, ...] = (50, 200)
    finite_n_train: int | None = None
    consistency_dimensions: tuple[int, ...] = (2, 3)
    consistency_ns: tuple[int, ...] = (100, 316, 1_000, 3_162, 10_000, 31_623, 100_000,
                                       316_228, 1_000_000)
    consistency_seeds: int = 5
    consistency_n_test: int = 5_000
    consistency_solve_cap: int = 10_000
    consistency_relu_depth: int = 50
    regression_dimension: int = 3
    regression_n_train: int = 2_000
    regression_n_test: int = 5_000
    regression_depths: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50, 100, 1_000, 10_000, 10**6)
    regression_seeds: int = 3
    resnet_dimensions: tuple[int, ...] = (3, 5)
    resnet_n_train: int = 1_000
    resnet_n_test: int = 5_000
    resnet_real_sets: tuple[str, ...] = ("wine", "breast_cancer")
    resnet_mlp_depths: tuple[int, ...] = (1, 3, 10, 100, 1_000, 10**4, 10**6)
    resnet_depths: tuple[int, ...] = (1, 3, 10, 100, 1_000)
    resnet_phase_depths: tuple[int, ...] = (10, 100, 1_000, 10_000)

    def scaled(self, scale: float) -> Sizes:
        """The same preset with every sample size multiplied by ``scale`` (at least 20)."""
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a positive number, got {scale!r}")

        def s(n: int) -> int:
            return max(20, int(round(n * scale)))

        ns = tuple(sorted({s(n) for n in self.consistency_ns}))
        return replace(
            self,
            n_train=s(self.n_train),
            n_test=s(self.n_test),
            finite_n_train=None if self.finite_n_train is None else s(self.finite_n_train),
            consistency_ns=ns,
            consistency_n_test=s(self.consistency_n_test),
            consistency_solve_cap=s(self.consistency_solve_cap),
            regression_n_train=s(self.regression_n_train),
            regression_n_test=s(self.regression_n_test),
            resnet_n_train=s(self.resnet_n_train),
            resnet_n_test=s(self.resnet_n_test),
        )


#: The full run: the paper's sizes (10,000 training and 10,000 test points).
FULL = Sizes()

#: ``--quick``: a few minutes on 2 CPU cores.
QUICK = Sizes(
    n_train=1_500,
    n_test=1_500,
    finite_depths=(50, 200),
    finite_n_train=1_000,
    consistency_ns=(100, 300, 1_000, 3_000, 10_000),
    consistency_seeds=2,
    consistency_n_test=1_000,
    consistency_solve_cap=3_000,
    regression_n_train=800,
    regression_n_test=1_000,
    regression_depths=(1, 2, 3, 5, 10, 20, 50, 1_000, 10**6),
    regression_seeds=2,
    resnet_dimensions=(3,),
    resnet_n_train=300,
    resnet_n_test=1_000,
    resnet_real_sets=("wine",),
    resnet_mlp_depths=(1, 10, 100, 10**4, 10**6),
    resnet_depths=(1, 10, 100),
    resnet_phase_depths=(10, 100),
)


def sizes_for(quick: bool = False, scale: float = 1.0, **overrides: Any) -> Sizes:
    """The preset (:data:`QUICK` or :data:`FULL`), scaled, with fields overridden."""
    sizes = QUICK if quick else FULL
    if scale != 1.0:
        sizes = sizes.scaled(scale)
    names = {f.name for f in fields(Sizes)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown size fields {sorted(unknown)}; known: {sorted(names)}")
    return replace(sizes, **overrides)


# ---------------------------------------------------------------------------------------
# Components written elsewhere in the package
# ---------------------------------------------------------------------------------------
