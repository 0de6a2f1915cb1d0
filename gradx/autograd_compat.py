"""autograd's differential operators over gradx's transforms, with autograd's signatures.

Code written against ``autograd`` (``from autograd import elementwise_grad, make_vjp``,
``from autograd.misc import flatten``) runs with the import changed to
``from gradx.autograd_compat import ...``:

- ``elementwise_grad(fun, argnum=0)``: the VJP of ``fun`` with a cotangent of ones, i.e. the
  sum of the Jacobian's rows (the derivative of each output for elementwise ``fun``);
- ``make_vjp(fun, argnum=0)(*args) -> (vjp, ans)``;
- ``make_jvp(fun, argnum=0)(*args)(v) -> (ans, J v)``;
- ``make_hvp(fun, argnum=0)(*args) -> (hvp, grad)``, ``hvp(v) = H v``;
- ``make_ggnvp(f, g=half squared norm, f_argnum=0)(*args)(v) = J^T H_g J v``, the
  generalized Gauss-Newton product of ``g(f(x))``;
- ``hessian_tensor_product`` / ``hessian_vector_product`` and ``tensor_jacobian_product`` /
  ``vector_jacobian_product``, ``grad_and_aux``, ``deriv``;
- ``flatten(value) -> (vector, unflatten)`` of nested tuples, lists and dicts of arrays
  (``autograd.misc.flatten``), differentiable both ways, and ``flatten_func``.

Gradients come back as gradx Tensors (``.numpy()`` for a NumPy array).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._tensor import Tensor
from ._tree import flatten as _tree_flatten
from ._tree import unflatten as _tree_unflatten
from .errors import ArgumentError, ShapeError
from .transforms import grad, jvp, value_and_grad, vjp

__all__ = ["deriv", "elementwise_grad", "flatten", "flatten_func", "grad_and_aux",
           "hessian_tensor_product", "hessian_vector_product", "make_ggnvp", "make_hvp",
           "make_jvp", "make_vjp", "tensor_jacobian_product", "vector_jacobian_product"]


def _one_arg(fun: Callable, args: tuple, argnum: int, name: str) -> Callable:
    """``fun`` as a function of its ``argnum``-th argument, the others fixed."""
    if not isinstance(argnum, int):
        raise ArgumentError(f"{name}: argnum must be one int (got {argnum!r}); autograd's "
                            "operators differentiate one argument")
    if not -len(args) <= argnum < len(args):
        raise ArgumentError(f"{name}: argnum={argnum} but the function got {len(args)} "
                            "positional arguments")
    argnum %= len(args)

    def f(x: Any) -> Any:
        return fun(*args[:argnum], x, *args[argnum + 1:])

    return f


def _ones_like(x: Any) -> Any:
    from .ops.creation import ones_like

    return ones_like(x if isinstance(x, Tensor) else Tensor(x))


def make_vjp(fun: Callable, argnum: int = 0) -> Callable:
    """``make_vjp(fun, argnum)(*args)`` returns ``(vjp, ans)``: ``ans = fun(*args)`` and
    ``vjp(g)`` the gradient of ``<g, fun>`` with respect to argument ``argnum``."""

    def maker(*args: Any, **kwargs: Any) -> tuple[Callable, Any]:
        f = _one_arg(lambda *a: fun(*a, **kwargs), args, argnum, "make_vjp")
        ans, vjp_fn = vjp(f, args[argnum % len(args)])

        def vjp_one(g: Any) -> Any:
            return vjp_fn(g)[0]

        return vjp_one, ans

    return maker


def elementwise_grad(fun: Callable, argnum: int = 0) -> Callable:
    """The VJP of ``fun`` with a cotangent of ones: for elementwise ``fun``, the derivative of
    each output with respect to its input, shaped like argument ``argnum``."""

    def gradfun(*args: Any, **kwargs: Any) -> Any:
        vjp_fn, ans = make_vjp(fun, argnum)(*args, **kwargs)
        return vjp_fn(_ones_like(ans))

    return gradfun


def make_jvp(fun: Callable, argnum: int = 0) -> Callable:
    """``make_jvp(fun, argnum)(*args)(v)`` returns ``(fun(*args), J v)`` (forward mode)."""

    def maker(*args: Any, **kwargs: Any) -> Callable:
        f = _one_arg(lambda *a: fun(*a, **kwargs), args, argnum, "make_jvp")
        x = args[argnum % len(args)]

        def jvp_one(v: Any) -> tuple[Any, Any]:
            return jvp(f, (x,), (v,))

        return jvp_one

    return maker


deriv = make_jvp


def make_hvp(fun: Callable, argnum: int = 0) -> Callable:
    """``make_hvp(fun, argnum)(*args)`` returns ``(hvp, grad)``: ``hvp(v) = H v`` for the
    Hessian of scalar ``fun`` with respect to argument ``argnum``, and its gradient there. The
    gradient's graph is kept, so each ``hvp(v)`` is one backward pass through it."""

    def maker(*args: Any, **kwargs: Any) -> tuple[Callable, Any]:
        f = _one_arg(lambda *a: fun(*a, **kwargs), args, argnum, "make_hvp")
        return make_vjp(grad(f))(args[argnum % len(args)])

    return maker


def hessian_tensor_product(fun: Callable, argnum: int = 0) -> Callable:
    """``(*args, v) -> H v`` for scalar ``fun``: the gradient of ``<grad fun, v>``."""

    def product(*args: Any, **kwargs: Any) -> Any:
        *args, v = args
        f = _one_arg(lambda *a: fun(*a, **kwargs), tuple(args), argnum, "hessian_tensor_product")
        return make_vjp(grad(f))(args[argnum % len(args)])[0](v)

    return product


hessian_vector_product = hessian_tensor_product


def tensor_jacobian_product(fun: Callable, argnum: int = 0) -> Callable:
    """``(*args, v) -> v^T J``: the VJP of ``fun`` at ``args`` with cotangent ``v``."""

    def product(*args: Any, **kwargs: Any) -> Any:
        *args, v = args
        return make_vjp(fun, argnum)(*args, **kwargs)[0](v)

    return product


vector_jacobian_product = tensor_jacobian_product


def grad_and_aux(fun: Callable, argnum: int = 0) -> Callable:
    """For ``fun`` returning ``(scalar, aux)``: ``(gradient, aux)``."""
    return grad(fun, argnums=argnum, has_aux=True)


def _half_sq_norm(x: Any) -> Any:
    from .ops.reductions import sum as _sum

    return 0.5 * _sum(x * x, axis=-1)


def make_ggnvp(f: Callable, g: Callable = _half_sq_norm, f_argnum: int = 0) -> Callable:
    """``make_ggnvp(f, g, f_argnum)(*args)`` returns ``ggnvp(v) = J^T H_g J v``: the
    generalized Gauss-Newton matrix of ``g(f(x))`` times ``v``, where ``J`` is ``f``'s Jacobian
    at ``args`` and ``H_g`` the Hessian of scalar ``g`` at ``f(args)``. One forward pass of
    ``f`` (its VJP is reused), then per ``v`` a JVP of ``f``, an HVP of ``g`` and a VJP of
    ``f``. The default ``g`` is autograd's ``0.5 * sum(y**2, axis=-1)``."""

    def maker(*args: Any, **kwargs: Any) -> Callable:
        f1 = _one_arg(lambda *a: f(*a, **kwargs), args, f_argnum, "make_ggnvp")
        x = args[f_argnum % len(args)]
        f_vjp, fx = make_vjp(f1)(x)
        g_hvp, _ = make_hvp(g)(fx.detach() if isinstance(fx, Tensor) else fx)

        def ggnvp(v: Any) -> Any:
            _, jv = jvp(f1, (x,), (v,))
            return f_vjp(g_hvp(jv))

        return ggnvp

    return maker


def flatten(value: Any) -> tuple[Any, Callable]:
    """``autograd.misc.flatten``: ``(vector, unflatten)`` where ``vector`` is every array in
    the nested tuples, lists and dicts of ``value`` (dicts by sorted key) raveled and
    concatenated (1-D, differentiable), and ``unflatten(vector)`` rebuilds the structure with
    the same shapes (differentiable too)."""
    from .ops.creation import asarray
    from .ops.shape import concat, reshape

    leaves, treedef = _tree_flatten(value)
    tensors = [asarray(leaf) for leaf in leaves]
    shapes = [tuple(t.shape) for t in tensors]
    if tensors:
        ref = next((t for t in tensors if t.requires_grad), tensors[0])
        tensors = [t if t.backend is ref.backend else asarray(t, backend=ref.backend)
                   for t in tensors]
        vector = concat([reshape(t, (-1,)) for t in tensors], axis=0)
    else:
        from .ops.creation import zeros

        vector = zeros((0,))
    sizes = [math.prod(s) for s in shapes]

    def unflatten(vec: Any) -> Any:
        vec = vec if isinstance(vec, Tensor) else asarray(vec)
        if tuple(vec.shape) != (builtins_sum(sizes),):
            raise ShapeError(f"unflatten: expected a vector of {builtins_sum(sizes)} elements "
                             f"(shapes {shapes}), got shape {tuple(vec.shape)}")
        out, start = [], 0
        for s, n in zip(shapes, sizes, strict=True):
            out.append(reshape(vec[start:start + n], s))
            start += n
        return _tree_unflatten(treedef, out)

    return vector, unflatten


def builtins_sum(xs: list[int]) -> int:
    total = 0
    for x in xs:
        total += x
    return total


def flatten_func(func: Callable, example: Any) -> tuple[Callable, Callable, Any]:
    """``autograd.misc.flatten_func``: ``func(params, *args)`` as a function of a flat
    vector; returns ``(flat_func, unflatten, flat_example)``."""
    flat_example, unflatten = flatten(example)

    def flat_func(flat_params: Any, *args: Any, **kwargs: Any) -> Any:
        return func(unflatten(flat_params), *args, **kwargs)

    return flat_func, unflatten, flat_example


_ = value_and_grad
