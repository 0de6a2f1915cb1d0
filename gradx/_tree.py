"""Flatten and rebuild nested tuples, lists and dicts, so transforms accept structured arguments."""

from __future__ import annotations

from typing import Any

Treedef = Any


def flatten(obj: Any) -> tuple[list[Any], Treedef]:
    """Leaves in a fixed order (dicts by sorted key) and a description to rebuild ``obj``."""
    if not isinstance(obj, tuple | list | dict):  # a leaf itself, the common case
        return [obj], None
    leaves: list[Any] = []
    return leaves, _walk(obj, leaves)


# Module-level helpers, not nested closures: a closure that calls itself is a reference
# cycle (function -> cell -> function) holding the leaves, and so whole graphs, until gc.
def _walk(o: Any, leaves: list[Any]) -> Treedef:
    if isinstance(o, tuple | list):
        return (type(o), [_walk(v, leaves) for v in o])
    if isinstance(o, dict):
        keys = sorted(o, key=repr)
        return (dict, [(k, _walk(o[k], leaves)) for k in keys])
    leaves.append(o)
    return None


def unflatten(treedef: Treedef, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten`."""
    if treedef is None:  # a leaf
        (leaf,) = leaves
        return leaf
    return _build(treedef, iter(leaves))


def _build(d: Treedef, it: Any) -> Any:
    if d is None:
        return next(it)
    kind, children = d
    if kind is dict:
        return {k: _build(c, it) for k, c in children}
    items = [_build(c, it) for c in children]
    if kind is list:
        return items
    if kind is tuple:
        return tuple(items)
    return kind(*items)  # namedtuple
