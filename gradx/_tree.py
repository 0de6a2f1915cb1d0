"""Flatten and rebuild nested tuples, lists and dicts, so transforms accept structured arguments."""

from __future__ import annotations

from typing import Any

Treedef = Any


def flatten(obj: Any) -> tuple[list[Any], Treedef]:
    """Leaves in a fixed order (dicts by sorted key) and a description to rebuild ``obj``."""
    leaves: list[Any] = []

    def walk(o: Any) -> Treedef:
        if isinstance(o, tuple | list):
            return (type(o), [walk(v) for v in o])
        if isinstance(o, dict):
            keys = sorted(o, key=repr)
            return (dict, [(k, walk(o[k])) for k in keys])
        leaves.append(o)
        return None

    return leaves, walk(obj)


def unflatten(treedef: Treedef, leaves: list[Any]) -> Any:
    """Inverse of :func:`flatten`."""
    it = iter(leaves)

    def build(d: Treedef) -> Any:
        if d is None:
            return next(it)
        kind, children = d
        if kind is dict:
            return {k: build(c) for k, c in children}
        items = [build(c) for c in children]
        if kind is list:
            return items
        if kind is tuple:
            return tuple(items)
        return kind(*items)  # namedtuple

    return build(treedef)


def tree_map(fn: Any, obj: Any) -> Any:
    leaves, treedef = flatten(obj)
    return unflatten(treedef, [fn(x) for x in leaves])
