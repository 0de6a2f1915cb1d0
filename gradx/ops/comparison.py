"""Comparisons and predicates: boolean results, so primitives without gradients."""

from __future__ import annotations

from typing import Any

from .._backend import ns
from .._primitive import primitive


def _predicate(name: str, arity: int) -> Any:
    if arity == 1:
        def fun(x, /):
            return getattr(ns(x), name)(x)
    else:
        def fun(x, y, /):
            return getattr(ns(x, y), name)(x, y)
    fun.__name__ = fun.__qualname__ = name
    fun.__doc__ = f"Elementwise {name}; a boolean result, so no gradient."
    return primitive(fun, saves_args=False, saves_ans=False)


equal = _predicate("equal", 2)
not_equal = _predicate("not_equal", 2)
less = _predicate("less", 2)
less_equal = _predicate("less_equal", 2)
greater = _predicate("greater", 2)
greater_equal = _predicate("greater_equal", 2)
logical_and = _predicate("logical_and", 2)
logical_or = _predicate("logical_or", 2)
logical_not = _predicate("logical_not", 1)
isnan = _predicate("isnan", 1)
isinf = _predicate("isinf", 1)
isfinite = _predicate("isfinite", 1)


