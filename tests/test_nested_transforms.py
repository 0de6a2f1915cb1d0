"""Nested transforms: an inner transform whose function closes over something an outer
transform or tape differentiates records its own pass, at any depth, without mixing the
perturbations of two levels; and the Jacobian of empty arrays.

The oracle is PyTorch in float64 (torch.func composes every transform with every other and
with autograd) plus values derived by hand."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx

torch = pytest.importorskip("torch")
tf = torch.func

# every test here runs on the compiled hot path and on the Python one
pytestmark = pytest.mark.usefixtures("hot_path")

RTOL = 1e-9
ATOL = 1e-11


@pytest.fixture(autouse=True)
def _float64():
    gx.set_default_dtype("float64")  # conftest restores float32 after each test


def host(v):
    """A NumPy copy of a Tensor, a raw array of any backend, a torch tensor or a number."""
    if isinstance(v, torch.Tensor):
        return v.detach().numpy()
    if isinstance(v, gx.Tensor):
        return v.numpy()
    if isinstance(v, (int, float)):
        return np.asarray(v, dtype=np.float64)
    return gx.Tensor(v).numpy()


def close(actual, desired):
    np.testing.assert_allclose(host(actual), host(desired), rtol=RTOL, atol=ATOL)


def T(v):
    """A torch float64 tensor holding ``v`` (``torch.tensor(0.1)`` would round to float32)."""
    return torch.tensor(np.asarray(v, dtype=np.float64))


def raw(h):
    """A raw array of the current backend holding ``h``."""
    return gx.tensor(np.asarray(h, dtype=np.float64)).data


def is_raw(v):
    return not isinstance(v, gx.Tensor) and hasattr(v, "shape")


# -- the examples of the issue ---------------------------------------------------------

def test_grad_of_x_times_inner_grad_closing_over_x(backend):
    # d/dx [x * d/dy (x y)] = d/dx x^2 = 2x; at x = 1 it is 2 (the old answer was 1)
    g = gx.grad(lambda x: x * gx.grad(lambda y: x * y)(2.0))(1.0)
    close(g, 2.0)
    assert is_raw(g)  # a raw number in, nothing outer: a raw array out
    tg = tf.grad(lambda x: x * tf.grad(lambda y: x * y)(T(2.0)))(T(1.0))
    close(g, tg)


def _f2(x, y, lib):
    return lib.sin(x * y) * y ** 3 + x ** 2 * lib.exp(0.5 * y)


def test_mixed_partials_through_an_inner_grad(backend):
    x0, y0 = 0.7, -1.3
    d2 = gx.grad(lambda x: gx.grad(lambda y: _f2(x, y, gx))(y0))(x0)
    t = tf.grad(lambda x: tf.grad(lambda y: _f2(x, y, torch))(T(y0)))(
        T(x0))
    close(d2, t)
    # by hand: df/dy = x y^3 cos(xy) + 3 y^2 sin(xy) + x^2 exp(y/2) / 2, so
    # d2f/dxdy = 4 y^3 cos(xy) - x y^4 sin(xy) + x exp(y/2)
    c, s = np.cos(x0 * y0), np.sin(x0 * y0)
    hand = 4 * y0 ** 3 * c - x0 * y0 ** 4 * s + x0 * np.exp(0.5 * y0)
    close(d2, hand)
    # the other order agrees
    d2_yx = gx.grad(lambda y: gx.grad(lambda x: _f2(x, y, gx))(x0))(y0)
    close(d2_yx, hand)


def test_backward_through_a_closed_over_inner_grad(backend):
    w_h = np.array([0.5, -1.0, 2.0])
    y_h = np.array([0.3, 0.2, -0.4])
    w = gx.tensor(w_h, requires_grad=True)
    g = gx.grad(lambda y: (gx.sin(w * y) * y).sum())(raw(y_h))
    assert isinstance(g, gx.Tensor) and g.requires_grad  # depends on w: comes back recorded
    (g ** 2).sum().backward()

    wt = torch.tensor(w_h, requires_grad=True)
    gt = tf.grad(lambda y: (torch.sin(wt * y) * y).sum())(torch.tensor(y_h))
    (gt ** 2).sum().backward()
    close(g, gt)
    close(w.grad, wt.grad)


def test_grad_of_a_closed_over_hessian(backend):
    x_h = np.array([1.0, 2.0, -0.5])

    def s(a, lib, hess):
        return hess(lambda x: a * (x ** 3).sum() + lib.sin(a * x).sum())(x_lib(lib)).sum()

    def x_lib(lib):
        return raw(x_h) if lib is gx else torch.tensor(x_h)

    g = gx.grad(lambda a: s(a, gx, gx.hessian))(0.8)
    t = tf.grad(lambda a: s(a, torch, tf.hessian))(T(0.8))
    close(g, t)
    # by hand: H = diag(6 a x - a^2 sin(a x)), so d/da sum(H) = sum(6x - 2a sin(ax) - a^2 x cos(ax))
    a = 0.8
    hand = np.sum(6 * x_h - 2 * a * np.sin(a * x_h) - a ** 2 * x_h * np.cos(a * x_h))
    close(g, hand)


# -- perturbation confusion (Siskind and Pearlmutter) ---------------------------------
# d/dx [x * d/dy (x + y)] is 1 at every x: the inner derivative is 1 whatever x is. An
# implementation that confuses the two perturbations gets 2.

def _jvp_d(f):
    return lambda x: gx.jvp(f, (x,), (1.0,))[1]


NESTINGS = {
    "grad/grad": (gx.grad, gx.grad),
    "jvp/jvp": (_jvp_d, _jvp_d),
    "grad/jvp": (gx.grad, _jvp_d),
    "jvp/grad": (_jvp_d, gx.grad),
}


@pytest.mark.parametrize("nesting", NESTINGS)
@pytest.mark.parametrize("x0", [1.0, -2.5])
def test_perturbation_confusion(backend, nesting, x0):
    outer, inner = NESTINGS[nesting]
    d = outer(lambda x: x * inner(lambda y: x + y)(1.0))(x0)
    close(d, 1.0)
    # the inner derivative taken at the outer variable itself
    d = outer(lambda x: x * inner(lambda y: x + y)(x))(x0)
    close(d, 1.0)
    # and a product: d/dx [x * d/dy (x y)] = 2x
    d = outer(lambda x: x * inner(lambda y: x * y)(3.0))(x0)
    close(d, 2 * x0)
    # d/dx [d/dy (x y) at y = x] = d/dx x = 1 (not 2: y is not x)
    d = outer(lambda x: inner(lambda y: x * y)(x))(x0)
    close(d, 1.0)


# -- every transform as inner and as outer --------------------------------------------

A_H = np.array([[0.4, -1.1, 0.3], [0.9, 0.2, -0.6], [-0.5, 0.7, 1.3]])
X_H = np.array([0.6, -0.9, 1.4])
Y_H = np.array([-0.3, 0.8, 0.5])
T_H = np.array([1.0, -0.5, 0.25])   # a tangent for y
U_H = np.array([0.2, 1.0, -0.7])    # a tangent for x
CT_H = np.array([0.5, 1.5, -1.0])   # a cotangent of G


class GX:
    """The transforms of gradx, in one calling convention."""

    sin, exp, tanh, sum = gx.sin, gx.exp, gx.tanh, gx.sum

    @staticmethod
    def const(h):
        return raw(h)

    @staticmethod
    def matvec(a, v):
        return gx.matmul(gx.tensor(a), v)

    grad = staticmethod(lambda f, y: gx.grad(f)(y))
    value_and_grad = staticmethod(lambda f, y: gx.value_and_grad(f)(y))
    vjp = staticmethod(lambda f, y, ct: (lambda o, fn: (o, fn(ct)[0]))(*gx.vjp(f, y)))
    jvp = staticmethod(lambda f, y, t: gx.jvp(f, (y,), (t,)))
    jacrev = staticmethod(lambda f, y: gx.jacobian(f, mode="rev")(y))
    jacfwd = staticmethod(lambda f, y: gx.jacobian(f, mode="fwd")(y))
    hessian = staticmethod(lambda f, y: gx.hessian(f)(y))
    hvp = staticmethod(lambda f, y, t: gx.hvp(f, (y,), (t,))[0])


class TH:
    """torch.func's, in the same convention."""

    sin, exp, tanh, sum = torch.sin, torch.exp, torch.tanh, torch.sum

    @staticmethod
    def const(h):
        return torch.tensor(np.asarray(h, dtype=np.float64))

    @staticmethod
    def matvec(a, v):
        return torch.tensor(a) @ v

    grad = staticmethod(lambda f, y: tf.grad(f)(y))
    value_and_grad = staticmethod(lambda f, y: tf.grad_and_value(f)(y)[::-1])
    vjp = staticmethod(lambda f, y, ct: (lambda o, fn: (o, fn(ct)[0]))(*tf.vjp(f, y)))
    jvp = staticmethod(lambda f, y, t: tf.jvp(f, (y,), (t,)))
    jacrev = staticmethod(lambda f, y: tf.jacrev(f)(y))
    jacfwd = staticmethod(lambda f, y: tf.jacfwd(f)(y))
    hessian = staticmethod(lambda f, y: tf.hessian(f)(y))
    hvp = staticmethod(lambda f, y, t: tf.jvp(tf.grad(f), (y,), (t,))[1])


def F(x, y, lib):
    """A scalar function of both levels' variables."""
    return lib.sum(lib.sin(x * y) * lib.exp(0.3 * y) + x ** 2 * lib.tanh(y))


def G(x, y, lib):
    """A vector function (3,) of both levels' variables."""
    return lib.sin(lib.matvec(A_H, x * y)) + x * y ** 2


# inner transforms over y: (scalar function of y, vector function of y, y0, lib) -> array
INNER = {
    "grad": lambda fs, fv, y, lib: lib.grad(fs, y),
    "value_and_grad": lambda fs, fv, y, lib: (lambda v, g: v * g)(*lib.value_and_grad(fs, y)),
    "vjp": lambda fs, fv, y, lib: (lambda o, c: o + c)(*lib.vjp(fv, y, lib.const(CT_H))),
    "jvp": lambda fs, fv, y, lib: (lambda o, t: o * t)(*lib.jvp(fv, y, lib.const(T_H))),
    "jacobian_rev": lambda fs, fv, y, lib: lib.jacrev(fv, y),
    "jacobian_fwd": lambda fs, fv, y, lib: lib.jacfwd(fv, y),
    "hessian": lambda fs, fv, y, lib: lib.hessian(fs, y),
    "hvp": lambda fs, fv, y, lib: lib.hvp(fs, y, lib.const(T_H)),
}


def inner_of(name, lib):
    """x -> the inner transform over y of F(x, .) or G(x, .): closes over x."""
    return lambda x: INNER[name](lambda y: F(x, y, lib), lambda y: G(x, y, lib),
                                 lib.const(Y_H), lib)


def scalar(h, lib):
    """A scalar of an inner result, whatever its shape."""
    return lambda x: lib.sum(lib.sin(h(x)))


# outer transforms over x of h (x -> array): lib, h, x0, a cotangent of h -> results
OUTER = {
    "grad": lambda lib, h, x, ct: (lib.grad(scalar(h, lib), x),),
    "value_and_grad": lambda lib, h, x, ct: lib.value_and_grad(scalar(h, lib), x),
    "vjp": lambda lib, h, x, ct: lib.vjp(h, x, lib.const(ct)),
    "jvp": lambda lib, h, x, ct: lib.jvp(h, x, lib.const(U_H)),
    "jacobian_rev": lambda lib, h, x, ct: (lib.jacrev(h, x),),
    "jacobian_fwd": lambda lib, h, x, ct: (lib.jacfwd(h, x),),
    "hessian": lambda lib, h, x, ct: (lib.hessian(scalar(h, lib), x),),
    "hvp": lambda lib, h, x, ct: (lib.hvp(scalar(h, lib), x, lib.const(U_H)),),
}


def outer_both(outer, h_of):
    """The outer transform of ``h_of(lib)`` in gradx and in torch.func."""
    theirs, ct = _torch_outer(outer, h_of)
    ours = OUTER[outer](GX, h_of(GX), raw(X_H), ct)
    assert len(ours) == len(theirs)
    return ours, theirs


_TORCH: dict = {}


def _torch_outer(outer, h_of):
    """torch.func's results (as NumPy) and the cotangent used, once per case: they do not
    depend on the backend or the hot path."""
    key = (outer, h_of.__name__, h_of.__defaults__)
    if key not in _TORCH:
        shape = tuple(h_of(TH)(TH.const(X_H)).shape)
        ct = np.cos(np.arange(float(np.prod(shape)))).reshape(shape)
        _TORCH[key] = [host(r) for r in OUTER[outer](TH, h_of(TH), TH.const(X_H), ct)], ct
    return _TORCH[key]


def _bind(of, name):
    def h_of(lib, name=name):
        return of(name, lib)

    h_of.__name__ = of.__name__
    return h_of


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("outer", OUTER)
def test_every_transform_as_inner_and_as_outer(backend, inner, outer):
    ours, theirs = outer_both(outer, _bind(inner_of, inner))
    for a, b in zip(ours, theirs, strict=True):
        close(a, b)
        # raw arrays in and nothing beyond the outer transform: raw arrays out
        assert is_raw(a), (outer, inner, type(a))


@pytest.mark.parametrize("inner", INNER)
def test_backward_through_every_inner_transform(backend, inner):
    """A user's tape as the outer level: backward() into a leaf the inner function closes
    over (a model parameter)."""
    x = gx.tensor(X_H, requires_grad=True)
    out = inner_of(inner, GX)(x)
    assert isinstance(out, gx.Tensor) and out.requires_grad
    gx.sum(gx.sin(out)).backward()

    xt = torch.tensor(X_H, requires_grad=True)
    torch.sum(torch.sin(inner_of(inner, TH)(xt))).backward()
    close(out, inner_of(inner, TH)(xt))
    close(x.grad, xt.grad)


# three levels: outer over x, a middle transform over y, an inner grad over z closing over both

def _phi(x, y, lib):
    """A vector (3,) function of x and y through an inner grad over z."""
    return lib.grad(lambda z: lib.sum(lib.sin(x * y * z) + (x + y) * z ** 2),
                    lib.const(T_H))


def middle_of(name, lib):
    return lambda x: INNER[name](lambda y: lib.sum(_phi(x, y, lib) * y),
                                 lambda y: _phi(x, y, lib) * lib.tanh(y), lib.const(Y_H), lib)


@pytest.mark.parametrize("middle", INNER)
@pytest.mark.parametrize("outer", ["grad", "vjp", "jvp", "jacobian_rev", "hvp"])
def test_three_levels(backend, middle, outer):
    ours, theirs = outer_both(outer, _bind(middle_of, middle))
    for a, b in zip(ours, theirs, strict=True):
        close(a, b)
        assert is_raw(a)


def test_three_levels_of_grad_each_closing_over_the_levels_above(backend):
    # h(x, y, z) = x^2 y^3 z^4 + x y z: d/dx d/dy d/dz h = 24 x y^2 z^3 + 1, each level at
    # its own point and every level's variable live in the innermost function
    def d3(x, lib):
        return lib.grad(lambda y: lib.grad(lambda z: x ** 2 * y ** 3 * z ** 4 + x * y * z,
                                           lib.const(0.7)), lib.const(-1.2))

    x0 = 0.9
    g = gx.grad(lambda x: d3(x, GX))(x0)
    close(g, 24 * x0 * 1.2 ** 2 * 0.7 ** 3 + 1)
    close(g, tf.grad(lambda x: d3(x, TH))(T(x0)))
    # and the innermost derivative taken at the outer variables themselves
    g = gx.grad(lambda x: gx.grad(lambda y: gx.grad(lambda z: x * y * z * (x + y + z))(x * y))(
        x))(x0)
    t = tf.grad(lambda x: tf.grad(lambda y: tf.grad(lambda z: x * y * z * (x + y + z))(x * y))(
        x))(T(x0))
    close(g, t)


# -- what the inner transforms take and give ------------------------------------------

def test_results_are_raw_only_when_nothing_outer_flows(backend):
    y = raw(Y_H)
    assert is_raw(gx.grad(lambda y: gx.sum(gx.sin(y)))(y))
    seen = {}

    def outer_fn(x):
        g = gx.grad(lambda y: gx.sum(gx.sin(x * y)))(y)  # raw y, but depends on x
        v, g2 = gx.value_and_grad(lambda y: gx.sum(x * y))(y)
        o, t = gx.jvp(lambda y: x * y, (y,), (raw(T_H),))
        seen.update(g=g, v=v, g2=g2, o=o, t=t)
        return gx.sum(g) + v + gx.sum(g2) + gx.sum(o * t)

    gx.grad(outer_fn)(raw(X_H))
    for name in ("g", "v", "o", "t"):
        assert isinstance(seen[name], gx.Tensor) and seen[name].requires_grad, name
    # d/dy sum(x y) = x: a Tensor of the recorded pass (its graph goes back to x)
    assert isinstance(seen["g2"], gx.Tensor)


def test_tensor_arguments(backend):
    y_h = np.array([0.4, -0.2])
    f = lambda y: gx.sum(y ** 3)  # noqa: E731
    # a Tensor that does not require grad: a detached Tensor back
    g = gx.grad(f)(gx.tensor(y_h))
    assert isinstance(g, gx.Tensor) and not g.requires_grad
    close(g, 3 * y_h ** 2)
    # a Tensor that requires grad, even a user leaf outside any transform, is tracked (as
    # in torch.func): its gradient keeps the graph, so backward gives the second derivative
    w = gx.tensor(y_h, requires_grad=True)
    g = gx.grad(f)(w)
    assert g.requires_grad
    gx.sum(g).backward()
    close(w.grad, 6 * y_h)
    wt = torch.tensor(y_h, requires_grad=True)
    tf.grad(lambda y: torch.sum(y ** 3))(wt).sum().backward()
    close(w.grad, wt.grad)
    # under no_grad nothing is recorded, closures or not
    with gx.no_grad():
        g = gx.grad(lambda y: gx.sum(w * y ** 3))(gx.tensor(y_h))
        r = gx.grad(lambda y: gx.sum(w * y ** 3))(raw(y_h))
    assert not g.requires_grad and is_raw(r)
    close(r, 3 * y_h * y_h ** 2)  # 3 w y^2, with w = y


def test_nested_containers_at_both_levels(backend):
    p_h = {"a": np.array([0.3, -0.7]), "b": (np.array(1.2), [np.array([0.5, 0.1])])}

    def inner(q, lib):
        def f(p):
            return lib.sum(lib.sin(p["a"] * q["w"]) * p["b"][0] + p["b"][1][0] * q["w"] ** 2)

        p = {"a": lib.const(p_h["a"]), "b": (lib.const(p_h["b"][0]),
                                              [lib.const(p_h["b"][1][0])])}
        g = lib.grad(f, p)
        return lib.sum(g["a"] * g["b"][1][0]) + g["b"][0] * q["s"]

    q_h = {"w": np.array([1.1, -0.4]), "s": np.array(0.6)}
    ours = gx.grad(lambda q: inner(q, GX))({k: raw(v) for k, v in q_h.items()})
    theirs = tf.grad(lambda q: inner(q, TH))({k: TH.const(v) for k, v in q_h.items()})
    assert set(ours) == {"w", "s"}
    for k in ours:
        close(ours[k], theirs[k])
        assert is_raw(ours[k])


def test_closed_over_parameter_and_hvp(backend):
    """hvp closing over a parameter of the user's tape: H v depends on it."""
    w_h = np.array([0.5, 1.5, -1.0])
    w = gx.tensor(w_h, requires_grad=True)
    hv = gx.hvp(lambda x: gx.logsumexp(w * x) * gx.sum(w * x ** 2), (raw(X_H),), (raw(U_H),))[0]
    assert isinstance(hv, gx.Tensor) and hv.requires_grad
    gx.sum(hv * hv).backward()

    wt = torch.tensor(w_h, requires_grad=True)
    ft = lambda x: torch.logsumexp(wt * x, 0) * torch.sum(wt * x ** 2)  # noqa: E731
    hvt = TH.hvp(ft, TH.const(X_H), TH.const(U_H))
    torch.sum(hvt * hvt).backward()
    close(hv, hvt)
    close(w.grad, wt.grad)


def test_an_inner_transform_that_returns_an_outer_variable(backend):
    # f returns the closed-over x itself: its value depends on the outer level
    v = gx.grad(lambda x: gx.value_and_grad(lambda y: x)(2.0)[0] * x)(3.0)
    close(v, 6.0)
    o = gx.grad(lambda x: gx.jvp(lambda y: x, (2.0,), (1.0,))[0] * x)(3.0)
    close(o, 6.0)
    # vjp where f returns its own input among its outputs
    out, fn = gx.vjp(lambda y: (y * 2.0, y), raw(Y_H))
    close(fn((raw(T_H), raw(U_H)))[0], 2 * T_H + U_H)


def test_vjp_fn_called_after_the_outer_level_moved_on(backend):
    # vjp_fn keeps recording for a vjp whose function closes over the outer variable
    def outer_fn(x):
        _, fn = gx.vjp(lambda y: gx.sin(x * y), raw(Y_H))
        return gx.sum(fn(raw(CT_H))[0])

    g = gx.grad(outer_fn)(raw(X_H))
    t = tf.grad(lambda x: torch.sum(tf.vjp(lambda y: torch.sin(x * y), TH.const(Y_H))[1](
        TH.const(CT_H))[0]))(TH.const(X_H))
    close(g, t)


# -- the Jacobian of empty arrays -------------------------------------------------------

EMPTY_CASES = {
    # name: (f, input shape, output shape)
    "empty input": (lambda x: gx.sum(x) + raw(np.array([1.0, 2.0])), (0,), (2,)),
    "empty output": (lambda x: x[:0], (3,), (0,)),
    "both empty": (lambda x: x * 2.0, (0,), (0,)),
    "empty matrix input": (lambda x: gx.sum(x, axis=0), (0, 2), (2,)),
    "empty 2-d output": (lambda x: gx.outer(x, x)[:0], (3,), (0, 3)),
}


@pytest.mark.parametrize("mode", ["rev", "fwd"])
@pytest.mark.parametrize("case", EMPTY_CASES)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["raw", "tensor"])
def test_jacobian_of_empty_arrays(backend, mode, case, as_tensor):
    f, in_shape, out_shape = EMPTY_CASES[case]
    x = gx.tensor(np.ones(in_shape))
    j = gx.jacobian(f, mode=mode)(x if as_tensor else x.data)
    assert tuple(j.shape) == out_shape + in_shape
    assert isinstance(j, gx.Tensor) == as_tensor
    assert host(j).dtype == np.float64


@pytest.mark.parametrize("mode", ["rev", "fwd"])
def test_jacobian_of_empty_arrays_matches_torch(mode):
    jac = tf.jacrev  # torch's jacfwd raises for an empty input: its jacrev gives the shapes
    for f_gx, f_t, shape in [(lambda x: x * 2.0, lambda x: x * 2.0, (0,)),
                             (lambda x: gx.sum(x) + 1.0, lambda x: torch.sum(x) + 1.0, (0, 3)),
                             (lambda x: x[:0], lambda x: x[:0], (4,))]:
        ours = gx.jacobian(f_gx, mode=mode)(np.ones(shape))
        theirs = jac(f_t)(torch.ones(shape, dtype=torch.float64))
        assert tuple(ours.shape) == tuple(theirs.shape)


def test_backward_into_a_parameter_through_two_levels(backend):
    # g = d/dx d/dy (w x^2 y^2) = 4 w x y; dg/dw = 4 x y
    w = gx.tensor(1.5, requires_grad=True)
    g = gx.grad(lambda x: gx.grad(lambda y: w * x ** 2 * y ** 2)(3.0))(2.0)
    assert isinstance(g, gx.Tensor) and g.requires_grad
    close(g, 4 * 1.5 * 2.0 * 3.0)
    g.backward()
    close(w.grad, 4 * 2.0 * 3.0)
