"""Every error the contract names, raised as a gradx error whose message names the op,
the shapes, dtypes or backends, and the fix."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")

CASES = [
    ("shape-mismatch", lambda: gx.tensor(np.ones((2, 3))) + gx.tensor(np.ones((4,))),
     gx.GradxError, r"add.*\(2, 3\).*\(4,\)"),
    ("matmul-inner", lambda: gx.tensor(np.ones((2, 3))) @ gx.tensor(np.ones((4, 2))),
     gx.GradxError, r"matmul.*\(2, 3\).*\(4, 2\)"),
    ("backend-mix", lambda: gx.tensor([1.0], backend="numpy")
     * gx.tensor([1.0], backend="array_api_strict"),
     gx.BackendMismatchError, r"multiply.*numpy.*array_api_strict"),
    ("int-requires-grad", lambda: gx.tensor([1, 2], requires_grad=True),
     gx.DTypeError, r"int64"),
    ("reshape", lambda: gx.reshape(gx.ones((2, 3)), (4,)), gx.GradxError, r"reshape"),
    ("bad-axis", lambda: gx.sum(gx.ones((2, 3)), axis=5), gx.GradxError, r"sum.*axis"),
    ("unknown-backend", lambda: gx.set_backend("nope"), gx.BackendUnavailableError, "known"),
    ("bad-dtype", lambda: gx.set_default_dtype("int32"), gx.DTypeError, "float"),
    ("backward-no-grad", lambda: gx.ones((2,)).sum().backward(), gx.GraphError,
     "does not require grad"),
]


@pytest.mark.parametrize("name,make,error,pattern", CASES, ids=[c[0] for c in CASES])
def test_errors_name_the_op_and_operands(name, make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_errors_keep_builtin_categories():
    with pytest.raises(ValueError):
        gx.tensor(np.ones((2, 3))) + gx.tensor(np.ones((4,)))


def test_rule_failure_is_wrapped_with_op_and_shapes():
    @gx.primitive
    def broken(x):
        return x * 2

    gx.defvjp(broken, lambda g, ans, x: gx.reshape(g, (7,)))  # wrong on purpose
    x = gx.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(gx.OpError, match=r"VJP rule of 'broken'.*\(2,\)"):
        gx.sum(broken(x) * gx.tensor([1.0, 1.0])).backward(retain_graph=True)


def test_rule_returning_wrong_shape_is_caught():
    @gx.primitive
    def squash(x):
        return x * 2

    gx.defvjp(squash, lambda g, ans, x: gx.sum(g))  # scalar for a (3,) input
    x = gx.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(gx.ShapeError, match=r"squash.*\(\).*\(3,\)"):
        squash(x).sum().backward()


def test_non_numeric_data_is_refused():
    for bad in (object(), "abc", ["a", "b"], None):
        with pytest.raises(gx.DTypeError, match="tensor: .* gives dtype"):
            gx.tensor(bad)
