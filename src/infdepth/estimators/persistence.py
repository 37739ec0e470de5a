"""Persistence of fitted estimators: activations stored by recipe (see the package
docstring, "Persistence")."""

from __future__ import annotations

import functools
import math
import pickle
import sys

import numpy as np

from ..activations import (
    _BUILTIN_CACHE,
    Activation,
    hermite_coefficients,
    hermite_series,
)
from ..activations import activation as _activation
from ..duals import SeriesDual

# =========================================================================== persistence
TABLES_KEY = "_infdepth_tables"
RECIPE_KEY = "_infdepth_activation"


def scaled_call(fn, scale, x):
    """phi of :meth:`Activation.from_callable`: the callable times its normalization."""
    return scale * fn(x)


def by_value_pickler() -> bool:
    """Whether the caller is ``copy.deepcopy`` or a cloudpickle pickler (as used by Dask
    and joblib's workers): they store lambdas by value, plain pickle and skops do not."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__") or ""
        if module == "copy" or "cloudpickle" in module.split("."):
            return True
        frame = frame.f_back
    return False


def picklable(obj) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - pickle raises many kinds (PicklingError, Attribute...)
        return False
    return True


def activation_state(act: Activation, owner: str):
    """A picklable description of an Activation, from which it is rebuilt exactly.

    Built-ins are stored by name and parameters; activations built from dual coefficients
    (``design_activation``) by their dual; ``Activation.from_callable(fn)`` by ``fn`` (which
    must be picklable by reference: a module-level function). Anything else is stored as
    is, if pickle can store it.
    """
    for (key, items), shared in _BUILTIN_CACHE.items():
        if shared is act:
            return {RECIPE_KEY: "builtin", "key": key, "params": dict(items)}
    dual = act.dual_function
    params = dict(act.params)
    series = type(dual) is SeriesDual and act._hermite is not None
    if series and "dual_coefficients" in params:
        return {RECIPE_KEY: "dual", "name": act.name, "params": params, "dual": dict(vars(dual)),
                "dual_error": act.dual_error, "hermite": act._hermite}
    fn = params.pop("callable", None)
    if series and fn is not None and picklable(fn):
        return {RECIPE_KEY: "callable", "name": act.name, "params": params, "function": fn,
                "dual": dict(vars(dual)), "dual_error": act.dual_error,
                "hermite": act._hermite}
    if picklable(act) or by_value_pickler():
        return act
    what = fn if fn is not None else act.function
    raise pickle.PicklingError(
        f"cannot serialize this {owner}: its activation {act.name!r} computes phi with "
        f"{what!r}, a lambda or local function, which pickle (and joblib, skops) cannot "
        "store. Define phi as a module-level function (def phi(x): ...) and build the "
        "activation with Activation.from_callable(phi), or serialize with cloudpickle."
    )


def activation_from_state(state: dict) -> Activation:
    recipe = state[RECIPE_KEY]
    if recipe == "builtin":
        return _activation(state["key"], **state["params"])
    dual = SeriesDual.__new__(SeriesDual)
    dual.__dict__.update(state["dual"])
    params = dict(state["params"])
    hermite = np.asarray(state["hermite"], dtype=float)
    if recipe == "dual":
        function = functools.partial(hermite_series, coefficients=hermite)
    elif recipe == "callable":
        fn = state["function"]
        params["callable"] = fn
        _, second_moment = hermite_coefficients(fn)
        function = functools.partial(scaled_call, fn, 1.0 / math.sqrt(second_moment))
    else:
        raise ValueError(f"unknown activation recipe {recipe!r}")
    return Activation(name=state["name"], function=function, dual_function=dual,
                      dual_error=state["dual_error"], params=params, _hermite=hermite)
