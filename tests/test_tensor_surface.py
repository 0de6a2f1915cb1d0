"""The Tensor surface that Array API code and PyTorch users touch: asarray keeps the graph,
complex input is refused with a DTypeError, Tensor methods follow PyTorch where the name
means something else in NumPy (transpose, split, flatten). PyTorch float64 is the oracle."""

from __future__ import annotations

import numpy as np
import pytest

import gradx as gx

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("hot_path")

X = np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.6]])


def _pair(values, requires_grad: bool = True):
    return (gx.tensor(values, dtype="float64", requires_grad=requires_grad),
            torch.tensor(values, dtype=torch.float64, requires_grad=requires_grad))


def _close(ours, theirs) -> None:
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-12)


def _other(backend: str) -> str:
    return "array_api_strict" if backend != "array_api_strict" else "numpy"


# -- asarray keeps the graph (defect 3) ------------------------------------------------

def test_asarray_of_a_tensor_is_the_tensor(backend):
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    h = x * 2.0
    assert gx.asarray(h) is h
    assert gx.asarray(h, copy=False) is h
    assert gx.asarray(h, dtype=h.dtype) is h
    assert gx.asarray(h, backend=backend) is h
    assert gx.asarray(x) is x and x.is_leaf


@pytest.mark.parametrize("how", ["plain", "copy", "float32", "float32-name", "requires-false"])
def test_asarray_of_a_non_leaf_differentiates_like_torch(backend, how):
    x, xt = _pair(X)
    h, ht = gx.sin(x), torch.sin(xt)
    if how == "plain":
        a, at = gx.asarray(h), torch.asarray(ht, requires_grad=True)
    elif how == "copy":
        a, at = gx.asarray(h, copy=True), torch.asarray(ht, copy=True)
        assert a is not h and a.requires_grad
        with gx.no_grad():
            a *= 3.0  # its own memory: h and sin's saved input are untouched
        with torch.no_grad():
            at *= 3.0
        _close(h, ht)
    elif how == "float32":
        a = gx.asarray(h, dtype=gx.float32)
        at = torch.asarray(ht, dtype=torch.float32)
        assert a.dtype == a.backend.dtype("float32")
    elif how == "float32-name":
        a, at = gx.asarray(h, dtype="float32"), torch.asarray(ht, dtype=torch.float32)
    else:
        a, at = gx.asarray(h, requires_grad=False), torch.asarray(ht, requires_grad=False)
        assert not a.requires_grad
        gx.sum(h * a).backward()
        (ht * at).sum().backward()
        _close(x.grad, xt.grad)
        return
    gx.sum(a * a * h).backward()
    (at * at * ht).sum().backward()
    _close(x.grad, xt.grad)
    assert x.grad.dtype == x.dtype


def test_asarray_of_a_tensor_to_another_backend_differentiates(backend):
    other = _other(backend)
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    a = gx.asarray(x * 2.0, backend=other)
    assert a.backend.name == other and a.requires_grad
    gx.sum(a * a).backward()
    np.testing.assert_allclose(x.grad.numpy(), 8 * X)
    assert x.grad.backend.name == backend


@pytest.mark.parametrize("change", ["dtype", "backend"])
def test_asarray_copy_false_that_needs_a_copy_raises(backend, change):
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    kw = {"dtype": "float32"} if change == "dtype" else {"backend": _other(backend)}
    with pytest.raises(gx.errors.ArgumentError, match="copy=False") as info:
        gx.asarray(x * 2.0, copy=False, **kw)
    assert isinstance(info.value, ValueError)  # the Array API standard's error


def test_asarray_requires_grad_marks_like_torch(backend):
    b, bt = _pair(X, requires_grad=False)
    a, at = gx.asarray(b, requires_grad=True), torch.asarray(bt, requires_grad=True)
    assert a is b and a.requires_grad and at is bt and at.requires_grad


def test_array_api_code_through_asarray_gets_gradients(backend):
    """What SciPy or scikit-learn do with their inputs: xp = array_namespace(x), then
    xp.asarray on everything, casts included."""

    def library(x):
        xp = x.__array_namespace__()
        x = xp.asarray(x)
        y = xp.asarray(x, dtype=xp.float64, copy=True)
        return xp.sum(xp.asarray(y * x) ** 2)

    x, xt = _pair(X)
    library(gx.sin(x)).backward()
    s = torch.sin(xt)
    ((s * s) ** 2).sum().backward()
    _close(x.grad, xt.grad)
    g = gx.grad(library)(gx.tensor(X, dtype="float64"))
    np.testing.assert_allclose(g.numpy(), 4 * X**3)


def test_asarray_takes_the_array_api_device_argument(backend):
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    assert gx.asarray(x, device=x.device) is x
    c = gx.asarray(0.5, dtype=x.dtype, device=x.device)  # array-api-extra's constants
    assert c.backend.name == backend and c.dtype == x.dtype
    with pytest.raises(gx.errors.ArgumentError, match="backend="):
        gx.asarray(x, device="elsewhere:3")


def test_asarray_of_a_list_of_tensors_stacks_them(backend):
    x, xt = _pair(X)
    h, ht = gx.exp(x), torch.exp(xt)
    a = gx.asarray([h[0, ...], h[1, ...] * 2.0])
    at = torch.stack([ht[0], ht[1] * 2.0])
    nested = gx.asarray([[h[0, 0], 1.5], [h[1, 2], h[0, 1]]])
    nt = torch.stack([torch.stack([ht[0, 0], torch.tensor(1.5, dtype=torch.float64)]),
                      torch.stack([ht[1, 2], ht[0, 1]])])
    _close(a, at)
    _close(nested, nt)
    assert nested.dtype == x.dtype  # the number took the tensors' dtype
    (gx.sum(a**2) + gx.sum(nested**3)).backward()
    ((at**2).sum() + (nt**3).sum()).backward()
    _close(x.grad, xt.grad)


def test_asarray_of_a_list_of_tensors_with_copy_false_raises(backend):
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    with pytest.raises(gx.errors.ArgumentError, match="gx.stack"):
        gx.asarray([x[0, ...], x[1, ...]], copy=False)


def test_tensor_of_a_list_of_tensors_requiring_grad_raises(backend):
    """gx.tensor makes a new leaf: a list of graph tensors would be cut silently."""
    x = gx.tensor(X, dtype="float64", requires_grad=True)
    with pytest.raises(gx.GraphError, match="gx.stack"):
        gx.tensor([x[0, 0] * 2.0, x[1, 1]])
    values = gx.tensor([x[0, 0].detach(), x[1, 1].detach()])
    np.testing.assert_allclose(values.numpy(), [X[0, 0], X[1, 1]])
    with gx.no_grad():
        assert gx.tensor([x[0, 0], x[1, 1]]).is_leaf


def test_tensor_of_a_tensor_is_a_leaf_copy(backend):
    x, xt = _pair(X)
    c = gx.tensor(x * 2.0)
    assert c.is_leaf and not c.requires_grad
    np.testing.assert_allclose(c.numpy(), 2 * X)


# -- complex input is refused (defect 9) -----------------------------------------------

def _complex_calls(backend: str) -> dict:
    xp = gx.get_backend().xp
    x = gx.tensor(X, dtype="float64")
    c_raw = xp.asarray([1.0 + 2.0j, 3.0 - 1.0j])
    return {
        "tensor-list": lambda: gx.tensor([1.0 + 2.0j, 3.0]),
        "tensor-scalar": lambda: gx.tensor(2.0j),
        "tensor-nested": lambda: gx.tensor([[1.0, 2.0], [3.0, 1j]]),
        "tensor-numpy": lambda: gx.tensor(np.array([1.0 + 2.0j])),
        "tensor-numpy-with-float-dtype": lambda: gx.tensor(np.array([1.0 + 2.0j]),
                                                           dtype="float64"),
        "tensor-list-with-float-dtype": lambda: gx.tensor([1.0 + 2.0j], dtype="float32"),
        "asarray-numpy": lambda: gx.asarray(np.array([1.0 + 2.0j])),
        "asarray-backend-array": lambda: gx.asarray(c_raw),
        "asarray-complex-scalar": lambda: gx.asarray(np.complex128(1j)),
        "Tensor-raw": lambda: gx.Tensor(c_raw),
        "Tensor-requires-grad": lambda: gx.Tensor(c_raw, requires_grad=True),
        "tensor-dtype": lambda: gx.tensor([1.0, 2.0], dtype="complex64"),
        "asarray-dtype": lambda: gx.asarray([1.0, 2.0], dtype="complex128"),
        "asarray-tensor-dtype": lambda: gx.asarray(x, dtype="complex128"),
        "zeros": lambda: gx.zeros((2,), dtype="complex64"),
        "ones": lambda: gx.ones((2,), dtype="complex128"),
        "empty": lambda: gx.empty((2,), dtype="complex128"),
        "full-dtype": lambda: gx.full((2,), 1.0, dtype="complex128"),
        "full-value": lambda: gx.full((2,), 1.0 + 1.0j),
        "eye": lambda: gx.eye(2, dtype="complex64"),
        "arange": lambda: gx.arange(3, dtype="complex64"),
        "linspace": lambda: gx.linspace(0.0, 1.0, 3, dtype="complex64"),
        "zeros_like": lambda: gx.zeros_like(x, dtype="complex64"),
        "full_like-value": lambda: gx.full_like(x, 2.0j),
        "astype": lambda: gx.astype(x, "complex128"),
        "astype-method": lambda: x.astype("complex64"),
        "setitem": lambda: x.__setitem__((0, 0), 1j),
        "setitem-array": lambda: x.__setitem__((0, ...), xp.asarray([1j, 1.0, 2.0])),
        "imul": lambda: x.__imul__(1j),
        "iadd-array": lambda: x.__iadd__(xp.asarray(1j)),
        "grad-of-complex-input": lambda: gx.grad(lambda z: gx.sum(z * z))(c_raw),
    }


COMPLEX_CASES = [
    "tensor-list", "tensor-scalar", "tensor-nested", "tensor-numpy",
    "tensor-numpy-with-float-dtype", "tensor-list-with-float-dtype", "asarray-numpy",
    "asarray-backend-array", "asarray-complex-scalar", "Tensor-raw", "Tensor-requires-grad",
    "tensor-dtype", "asarray-dtype", "asarray-tensor-dtype", "zeros", "ones", "empty",
    "full-dtype", "full-value", "eye", "arange", "linspace", "zeros_like", "full_like-value",
    "astype", "astype-method", "setitem", "setitem-array", "imul", "iadd-array",
    "grad-of-complex-input",
]


@pytest.mark.parametrize("case", COMPLEX_CASES)
def test_complex_input_raises_a_dtype_error(backend, case):
    call = _complex_calls(backend)[case]
    with pytest.raises(gx.DTypeError, match="complex"):
        call()


def test_requires_grad_on_a_complex_tensor_raises():
    c = gx.Tensor(np.array([1.0, 2.0]))
    c.data = np.array([1.0 + 1j, 2.0])  # however it came to hold complex values
    with pytest.raises(gx.DTypeError, match="complex numbers are not supported"):
        c.requires_grad_()


def test_backward_of_a_complex_tensor_raises(numpy_default):
    x = gx.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    y = x * 1.0
    y.data = y.data * 1j  # a complex value reached by a path the creation checks miss
    with pytest.raises(gx.DTypeError, match="complex"):
        gx.sum(y).backward()


@pytest.mark.parametrize("how", ["multiply", "reflected", "add", "numpy", "function"])
def test_complex_scalar_in_arithmetic_raises(how, hot_path):
    """A complex scalar with a real Tensor is refused by dispatch on both hot paths (its
    result would differentiate as its real part)."""
    x = gx.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    with pytest.raises(gx.DTypeError, match="complex"):
        gx.grad(lambda z: gx.sum(gx.abs({"multiply": lambda: z * 1j,
                                          "reflected": lambda: 2j * z,
                                          "add": lambda: z + 1j,
                                          "numpy": lambda: z * np.complex128(1j),
                                          "function": lambda: gx.add(z, 1j)}[how]())))(x)


# -- Tensor methods follow PyTorch (defect 22) -----------------------------------------

@pytest.mark.parametrize("shape, dims", [((2, 3), (0, 1)), ((2, 3), (1, 0)), ((2, 3), (-1, -2)),
                                         ((2, 3, 4, 5), (-2, -1)), ((2, 3, 4), (0, 2)),
                                         ((2, 3, 4), (1, 1)), ((3,), (0, 0)), ((), (0, -1))])
def test_transpose_swaps_two_dims_like_torch(backend, shape, dims):
    v = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape) / 7.0
    x, xt = _pair(v)
    y, yt = x.transpose(*dims), xt.transpose(*dims)
    assert y.shape == tuple(yt.shape)
    _close(y, yt)
    w = np.linspace(-1.0, 1.0, max(y.size, 1)).reshape(y.shape)
    gx.sum(y * gx.tensor(w, dtype="float64")).backward()
    (yt * torch.tensor(w)).sum().backward()
    _close(x.grad, xt.grad)


def test_attention_style_transpose(backend):
    q, qt = _pair(np.arange(48.0).reshape(1, 2, 4, 6) / 40)
    k, kt = _pair(np.arange(48.0, 0.0, -1.0).reshape(1, 2, 4, 6) / 40)
    s, st = q @ k.transpose(-2, -1), qt @ kt.transpose(-2, -1)
    assert s.shape == (1, 2, 4, 4)
    gx.sum(gx.exp(s)).backward()
    torch.exp(st).sum().backward()
    _close(q.grad, qt.grad)
    _close(k.grad, kt.grad)


@pytest.mark.parametrize("args", [(), ((1, 0),), (0,), (0, 1, 2), (0, 2), (-3, 0)])
def test_transpose_with_other_arguments_raises_naming_permute_dims(backend, args):
    x = gx.tensor(X, dtype="float64")
    with pytest.raises(gx.errors.ArgumentError, match="transpose"):
        x.transpose(*args)


def test_permute_and_permute_dims_match_torch(backend):
    v = np.arange(24.0).reshape(2, 3, 4)
    x, xt = _pair(v)
    _close(x.permute(2, 0, 1), xt.permute(2, 0, 1))
    _close(x.permute((1, 2, 0)), xt.permute((1, 2, 0)))
    _close(x.permute_dims((2, 1, 0)), xt.permute(2, 1, 0))


@pytest.mark.parametrize("start, end", [(0, -1), (1, -1), (0, 1), (1, 2), (-2, -1), (2, 2)])
def test_flatten_matches_torch(backend, start, end):
    x, xt = _pair(np.arange(24.0).reshape(2, 3, 4))
    y, yt = x.flatten(start, end), xt.flatten(start, end)
    assert y.shape == tuple(yt.shape)
    _close(y, yt)


@pytest.mark.parametrize("size, dim", [(2, 0), (1, 1), (2, 1), (3, 1), ([1, 2], 1), ([2], 0)])
def test_split_method_matches_torch(backend, size, dim):
    x, xt = _pair(X)
    pieces, tpieces = x.split(size, dim), xt.split(size, dim)
    assert [p.shape for p in pieces] == [tuple(p.shape) for p in tpieces]
    w = [float(i + 1) for i in range(len(pieces))]
    sum(gx.sum(p * p) * c for p, c in zip(pieces, w, strict=True)).backward()
    sum((p * p).sum() * c for p, c in zip(tpieces, w, strict=True)).backward()
    _close(x.grad, xt.grad)


def test_namespace_split_keeps_numpy_meaning(backend):
    x = gx.arange(6)
    assert [p.shape for p in gx.split(x, 2)] == [(3,), (3,)]  # 2 equal sections
    assert [p.shape for p in x.split(2)] == [(2,), (2,), (2,)]  # pieces of 2, as PyTorch


@pytest.mark.parametrize("dim, descending", [(-1, False), (0, False), (1, True), (0, True)])
def test_sort_method_returns_values_and_indices_like_torch(backend, dim, descending):
    v = np.array([[3.0, 1.0, 2.0, 1.0], [0.5, 4.0, 0.5, -1.0], [2.0, 2.0, 7.0, 0.0]])
    x, xt = _pair(v)
    values, indices = x.sort(dim=dim, descending=descending)
    vt, it = xt.sort(dim=dim, descending=descending, stable=True)
    _close(values, vt)
    np.testing.assert_array_equal(indices.numpy(), it.numpy())
    gx.sum(values * gx.tensor(np.arange(12.0).reshape(3, 4))).backward()
    (vt * torch.arange(12.0, dtype=torch.float64).reshape(3, 4)).sum().backward()
    _close(x.grad, xt.grad)
    np.testing.assert_allclose(gx.sort(x, axis=dim, descending=descending).numpy(),
                               vt.detach().numpy())  # the namespace function: values only


def test_tensor_of_an_object_is_a_dtype_error_on_every_backend(backend):
    """A Python object no namespace can hold is a DTypeError naming its type (was
    GradxTypeError from array_api_strict's own message)."""
    with pytest.raises(gx.DTypeError, match="object"):
        gx.tensor(object())
