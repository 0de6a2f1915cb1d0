"""Every registered primitive has a gradient row or a reason it has none."""

from op_table import NON_DIFFERENTIABLE, all_rows

import gradx as gx
import gradx.nn  # noqa: F401  (registers the nn primitives)


def test_every_primitive_has_a_row():
    # gradx's own primitives; tests and users register more in the same registry
    registered = {name for name, p in gx.primitives().items()
                  if p.fun.__module__.split(".")[0] == "gradx"}
    covered = {r.name for r in all_rows()} | set(NON_DIFFERENTIABLE)
    missing = sorted(registered - covered)
    assert not missing, f"primitives without a test row or a NON_DIFFERENTIABLE reason: {missing}"
    stale = sorted(covered - registered)
    assert not stale, f"rows name primitives that are not registered: {stale}"


def test_rows_cover_broadcasting_and_scalars():
    shapes = [r.shapes for r in all_rows()]
    assert any(() in s for s in shapes)
    assert any(len(s) == 2 and s[0] != s[1] for s in shapes)
