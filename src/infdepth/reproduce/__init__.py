"""``infdepth reproduce``: the paper's headline experiment, and the evidence beyond it.

Radhakrishnan, Belkin, Uhler, "Wide and deep neural networks achieve consistency for
classification" (PNAS 2023; arXiv 2204.14126). Five sections, each printing a table and
writing every number (CSV and JSON) and a PNG plot to the output folder:

1. **Synthetic experiment** (the paper's Figure): two Dirichlet classes on the sphere,
   prior 0.4, d = 2, 3, 5, 9. Per dimension: the exact Bayes accuracy, majority vote,
   1-NN, the Hilbert estimate (singular kernel ``||x - z||^-(d-1)``), and infinitely wide
   NTK networks with ReLU, erf, GELU, softplus, the sine family and the activation
   designed for that dimension, at the paper's finite depths and at depth infinity (the
   limiting rule, one per regime: ReLU and GELU give the majority vote, softplus the
   dual'(1) < 1 psi_interpolation rule that the paper's taxonomy misses, the others singular rules).
2. **Consistency**: excess error over the Bayes classifier versus the training size n,
   averaged over seeds, on a log-log plot with fitted slopes.
3. **Regression versus classification with depth** (the paper's closing claim): the
   output of the trained network tends to 0 away from the training points as the depth
   grows, so its squared error against a regression target grows with depth, while the
   accuracy of its sign does not fall.
4. **Taxonomy phase diagram** (from :mod:`infdepth.plots`).
5. **Residual networks**: accuracy against depth up to infinity for MLPs and ResNets
   (branches scaled by 1/sqrt(L), whose infinitely deep kernel is the depth-time ODE
   kernel) on a Dirichlet task and real sets, and the ResNet phase diagram by branch
   exponent (docs/resnet.md).

Excess errors are computed exactly from the known posterior eta:
``E[|2 eta(x) - 1| 1{f(x) != f*(x)}]`` averaged over the test points, an unbiased estimate
of the excess risk with far less variance than the difference of two test accuracies.

Entry points: :func:`run` (Python), :func:`main` (command line) and
:func:`add_arguments` / :func:`run_from_args` (to mount as ``infdepth reproduce``).
Modules: :mod:`.config` (sizes), :mod:`.components` (estimators and cached activations),
:mod:`.report` (tables, writers, figures, exact excess errors), one module per section
(:mod:`.synthetic`, :mod:`.consistency`, :mod:`.depth`, :mod:`.taxonomy`,
:mod:`.resnet`) and
:mod:`.runner` (the job) and :mod:`.command` (its command line). Names are
imported lazily (as in :mod:`infdepth`), so the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule that defines it
_EXPORTS: dict[str, str] = {
    "Sizes": "config",
    "FULL": "config",
    "QUICK": "config",
    "sizes_for": "config",
    "fit_slope": "consistency",
    "run": "runner",
    "prepare_output_dir": "runner",
    "main": "command",
    "add_arguments": "command",
    "run_from_args": "command",
    "MissingComponent": "components",
}

__all__ = ["Sizes", "FULL", "QUICK", "sizes_for", "fit_slope", "run", "main",
           "add_arguments", "run_from_args", "prepare_output_dir", "MissingComponent"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'infdepth.reproduce' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
