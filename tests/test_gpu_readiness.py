"""What the first GPU run depends on, checked without a GPU where possible.

Backend tests run on every backend (the ``backend`` fixture); those that need CuPy itself run
on real CuPy or on the CPU stand-in (``../shared/tools/cupy-standin``, which fails where CuPy
fails) and skip with the reason elsewhere. Counting kernel launches needs the stand-in's
counters; the fused kernels' CUDA C runs only on a GPU (``tests/test_optim_fused.py``).
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import gradx as gx
import gradx.nn as nn
import gradx.nn.functional as F
from gradx.backends.cupy_backend import CupyBackend

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]


def _cupy():
    """The cupy module (real or stand-in) when gradx's cupy backend is usable, else skip."""
    reason = gx._backend._instance("cupy").unavailable_reason()
    if reason:
        pytest.skip(reason)
    import cupy

    return cupy


def _standin():
    """The stand-in's cupy module (its counters), else skip."""
    cupy = _cupy()
    if not hasattr(cupy, "_fake"):
        pytest.skip("counts CuPy calls with the CPU stand-in's counters; this is real CuPy")
    return cupy


@contextlib.contextmanager
def emulated_kernels():
    """Run the fused kernels as their ``emulate`` array code, each counted as one launch:
    the stand-in cannot run CUDA C. The kernel text handed to ElementwiseKernel must be the
    spec's, so the plumbing (argument order, in-place outputs, dtypes) is what is tested."""
    cupy = _standin()
    from gradx.backends.cupy_kernels import SPECS

    class Emulated:
        def __init__(self, in_params, out_params, operation, name, **kwargs):
            self.spec = SPECS[name]
            assert (in_params, out_params, operation) == (
                self.spec.in_params, self.spec.out_params, self.spec.operation)
            assert kwargs == {"no_return": True}

        def __call__(self, *args):
            stats = cupy._fake.stats
            before = stats.ops.copy()
            self.spec.emulate(cupy, *args)
            stats.ops.clear()
            stats.ops.update(before)
            stats.ops[f"kernel:{self.spec.name}"] += 1

    backend = gx._backend._instance("cupy")
    saved = backend._kernels, cupy.ElementwiseKernel
    backend._kernels, cupy.ElementwiseKernel = {}, Emulated
    try:
        yield backend
    finally:
        backend._kernels, cupy.ElementwiseKernel = saved


# -- availability ----------------------------------------------------------------------

def _fresh_cupy_backend() -> CupyBackend:
    _cupy()
    return CupyBackend()


def test_cupy_is_available_only_when_a_kernel_and_a_matmul_run(monkeypatch):
    cupy = _standin()  # real CuPy's ndarray is an extension type: its methods stay as they are
    assert _fresh_cupy_backend().unavailable_reason() is None

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA_ERROR_FILE_NOT_FOUND: libcublas.so.12")

    monkeypatch.setattr(cupy.ndarray, "__matmul__", broken)
    reason = _fresh_cupy_backend().unavailable_reason()
    assert reason and "matmul" in reason and "libcublas" in reason and "ctk" in reason
    monkeypatch.undo()
    monkeypatch.setattr(cupy, "arange", broken)
    assert "kernel" in _fresh_cupy_backend().unavailable_reason()


def test_the_device_is_not_queried_on_the_hot_path(monkeypatch):
    cupy = _cupy()
    backend = gx._backend.resolve("cupy")
    calls = collections.Counter()
    for name in ("getDeviceCount", "getDevice"):
        real = getattr(cupy.cuda.runtime, name)
        monkeypatch.setattr(cupy.cuda.runtime, name,
                            lambda *a, _n=name, _f=real: calls.update([_n]) or _f(*a))
    model = nn.Sequential(nn.Linear(4, 8, backend=backend), nn.ReLU(),
                          nn.Linear(8, 2, backend=backend))
    opt = gx.optim.Adam(model.parameters())
    x = gx.tensor(np.ones((3, 4)), backend=backend)
    for _ in range(3):
        opt.zero_grad()
        gx.sum(model(x) ** 2).backward()
        opt.step()
        assert gx._backend.resolve(backend) is backend  # the availability check is cached
    assert calls == {}


# -- leaf gradients in their parameter's layout ----------------------------------------

def test_linear_weight_grad_is_row_major_owned_and_zeroed_in_place(backend):
    model = nn.Linear(3, 2)
    x = gx.tensor(np.arange(12.0).reshape(4, 3))
    model(x).sum().backward()
    b = model.weight.backend
    if b.name in ("numpy", "cupy"):  # the backends whose arrays show layout and views
        for p in model.parameters():
            assert p.grad.data.flags.c_contiguous
        g = model.weight.grad
        assert b.writable(g.data)
        data = g.data
        model.zero_grad(set_to_none=False)
        assert model.weight.grad is g and g.data is data
        model(x).sum().backward()
        assert model.weight.grad.data is data  # accumulated in place
    np.testing.assert_allclose(model.weight.grad.numpy(),
                               np.tile(np.arange(12.0).reshape(4, 3).sum(0), (2, 1)),
                               rtol=1e-6)


def test_a_transposed_leaf_gradient_is_stored_row_major(backend):
    """Through ``x @ w.T`` written by hand the VJP is a transposed view; ``Backend.owned``
    stores a row-major copy, so the accumulation afterwards adds in place."""
    w = gx.tensor(np.ones((5, 3)), requires_grad=True)
    x = gx.tensor(np.arange(12.0).reshape(4, 3))
    (x @ w.T).sum().backward()
    if w.backend.name in ("numpy", "cupy"):
        assert w.grad.data.flags.c_contiguous and w.backend.writable(w.grad.data)
    np.testing.assert_allclose(w.grad.numpy(), np.tile(np.arange(12.0).reshape(4, 3).sum(0),
                                                       (5, 1)))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 5), (5,)])
def test_linear_matches_torch_at_first_and_second_order(shape):
    rng = np.random.default_rng(0)
    xh, wh, bh = rng.standard_normal(shape), rng.standard_normal((3, 5)), rng.standard_normal(3)
    x, w, b = (gx.tensor(a, requires_grad=True) for a in (xh, wh, bh))
    y = F.linear(x, w, b)
    gx_grads = gx.grad(lambda x, w: gx.sum(gx.grad(
        lambda w: gx.sum(F.linear(x, w, b) ** 2))(w) ** 2), argnums=(0, 1))(x, w)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xh, wh, bh))
    ty = torch.nn.functional.linear(tx, tw, tb)
    (gw,) = torch.autograd.grad((torch.nn.functional.linear(tx, tw, tb) ** 2).sum(), tw,
                                create_graph=True)
    t_grads = torch.autograd.grad((gw ** 2).sum(), (tx, tw))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12)
    for a, t in zip(gx_grads, t_grads, strict=True):
        np.testing.assert_allclose(a.numpy(), t.numpy(), rtol=1e-10, atol=1e-12)


# -- transfers, creation, scatter-add --------------------------------------------------

def test_numpy_from_dlpack_reads_any_backend(backend):
    x = gx.tensor([[1.0, 2.0]])
    assert np.from_dlpack(x).tolist() == [[1.0, 2.0]]
    assert np.from_dlpack(x, device="cpu").tolist() == [[1.0, 2.0]]


def test_cupy_consumers_still_get_the_device_capsule():
    cupy = _cupy()
    x = gx.tensor([1.0, 2.0], backend="cupy")
    if not hasattr(cupy, "_fake"):  # real CuPy: zero-copy, the same device memory
        assert cupy.from_dlpack(x).data.ptr == x.data.data.ptr
        return
    calls = []
    real = type(x.data).__dlpack__

    def spy(self, **kwargs):
        calls.append(kwargs)
        return real(self, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(x.data), "__dlpack__", spy)
        with contextlib.suppress(BufferError):  # the stand-in holds no device memory
            x.__dlpack__(stream=1)
    assert calls == [{"stream": 1}]


@pytest.mark.parametrize("bad", [object(), "abc", ["a", "b"], None])
def test_non_numeric_data_is_a_dtype_error_on_cupy(bad):
    _cupy()
    with pytest.raises(gx.DTypeError, match="tensor: .* gives dtype"):
        gx.tensor(bad, backend="cupy")


@pytest.mark.parametrize("dtype", ["complex64", "complex128", "float32"])
def test_cupy_scatter_add_handles_complex_values(dtype):
    cupy = _cupy()
    rng = np.random.default_rng(0)
    unit = 1j if dtype.startswith("complex") else 0
    target = (rng.standard_normal(6) + unit * rng.standard_normal(6)).astype(dtype)
    values = (rng.standard_normal(5) + unit * rng.standard_normal(5)).astype(dtype)
    key = np.array([0, 2, 2, 5, 0])
    want = target.copy()
    np.add.at(want, key, values)
    b = gx._backend.resolve("cupy")
    got = b.scatter_add(cupy.asarray(target), cupy.asarray(key), cupy.asarray(values))
    assert got.dtype == want.dtype
    np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-6)
    rows = b.scatter_add(cupy.asarray(np.zeros((3, 2), dtype)), (cupy.asarray([1, 1]),),
                         cupy.asarray(np.ones((2, 2), dtype)))
    np.testing.assert_array_equal(cupy.asnumpy(rows), [[0, 0], [2, 2], [0, 0]])


# -- dropout masks ---------------------------------------------------------------------

def test_dropout_mask_is_seeded_replayable_and_fair(backend):
    x = gx.ones((200, 50))
    gx.random.seed(5)
    a = F.dropout(x, 0.3).numpy()
    state = gx.random.get_state()
    b = F.dropout(x, 0.3).numpy()
    gx.random.set_state(state)
    assert np.array_equal(F.dropout(x, 0.3).numpy(), b)  # a checkpoint's recomputation
    gx.random.seed(5)
    assert np.array_equal(F.dropout(x, 0.3).numpy(), a)
    assert not np.array_equal(a, b)
    assert abs((a != 0).mean() - 0.7) < 0.02
    assert (a != 0).mean(axis=0).std() < 0.1  # no column pattern from the counter hash


def test_dropout_mask_kernel_emulation_equals_the_array_code():
    cupy = _standin()
    b = gx._backend.resolve("cupy")
    for dtype in ("float32", "float64"):
        want = b.dropout_mask(12345, (7, 9), 0.4, np.dtype(dtype))  # array code
        with emulated_kernels():
            got = b.dropout_mask(12345, (7, 9), 0.4, np.dtype(dtype))
            assert cupy._fake.stats.ops["kernel:gradx_dropout_mask"] >= 1
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(cupy.asnumpy(got), cupy.asnumpy(want))


def test_dropout_on_cupy_draws_nothing_on_the_host_and_copies_nothing():
    cupy = _standin()
    x = gx.ones((64, 256), backend="cupy")
    cupy._fake.stats.reset()
    with emulated_kernels():
        F.dropout(x, 0.2)
    assert cupy._fake.stats.events["h2d"] == 0 and cupy._fake.stats.syncs == 0


# -- the digits training step on CuPy --------------------------------------------------

def _digits():
    pytest.importorskip("sklearn", reason="the digits example needs scikit-learn")
    pytest.importorskip("tqdm", reason="the digits example needs tqdm")
    spec = importlib.util.spec_from_file_location("train_digits", ROOT / "examples" /
                                                  "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digits_steps(td, optimizer: str, dropout: float, steps: int, on_step=None):
    gx.random.seed(0)
    x_h, _, y_h, _ = td.load_data(0.25, 0)
    with gx.use_backend("cupy"):
        x, y = gx.tensor(x_h), gx.tensor(y_h)
        model = td.make_model(256, dropout)
        opt = (gx.optim.Adam(model.parameters(), lr=1e-3) if optimizer == "adam"
               else gx.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9))
        order = gx.tensor(gx.random.permutation(x.shape[0]))
        for i in range(steps):
            idx = order[i * 64:(i + 1) * 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            if on_step is None:
                opt.step()
            else:
                on_step(i, opt)
    return model


def test_a_digits_training_step_makes_no_host_sync():
    _cupy()
    import cupyx

    td = _digits()
    _digits_steps(td, "adam", 0.2, 2)  # optimizer state and caches made
    with cupyx.allow_synchronize(False):
        _digits_steps(td, "adam", 0.2, 3)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_an_optimizer_step_of_the_digits_mlp_launches_at_most_20_kernels(optimizer):
    cupy = _standin()
    td = _digits()
    launches = []

    def step(i, opt):
        cupy._fake.stats.reset()
        opt.step()
        launches.append(sum(cupy._fake.stats.ops.values()))

    with emulated_kernels():
        _digits_steps(td, optimizer, 0.2, 4, step)
    assert max(launches) <= 20, launches
    assert launches[-1] == 6  # one per parameter: three weights, three biases
