"""The fused optimizer updates of the CuPy backend (``backends/cupy_kernels.py``).

On the CPU stand-in the kernels' CUDA C cannot run: their ``emulate`` array code runs in its
place (``emulated_kernels``), which tests the plumbing, the in-place outputs and the formula
as written beside the C, against the optimizers' array code and against torch.optim. Where
a kernel fails to build, the array code must take over with nothing changed. On a GPU, the
compiled kernels are compared with the array code.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_gpu_readiness import _cupy, _standin, emulated_kernels

import gradx as gx

torch = pytest.importorskip("torch")

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for name, kw in CASES]
RNG = np.random.default_rng(0)
P0 = [RNG.standard_normal((4, 3)), RNG.standard_normal(3)]
GRADS = [[RNG.standard_normal((4, 3)), RNG.standard_normal(3)] for _ in range(4)]


def _run_gradx(name: str, kw: dict, dtype: str, backend: str) -> list[np.ndarray]:
    params = [gx.tensor(p.astype(dtype), backend=backend, requires_grad=True) for p in P0]
    opt = getattr(gx.optim, name)(params, **kw)
    for grads in GRADS:
        for p, g in zip(params, grads, strict=True):
            p.grad = gx.tensor(g.astype(dtype), backend=backend)
        opt.step()
    return [p.numpy() for p in params]


def _run_torch(name: str, kw: dict) -> list[np.ndarray]:
    params = [torch.tensor(p, requires_grad=True) for p in P0]
    opt = getattr(torch.optim, name)(params, **kw)
    for grads in GRADS:
        for p, g in zip(params, grads, strict=True):
            p.grad = torch.tensor(g)
        opt.step()
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_update_matches_the_array_code_and_torch(case, dtype):
    cupy = _standin()
    name, kw = case
    reference = _run_gradx(name, kw, dtype, "cupy")  # array code: kernels cannot run here
    with emulated_kernels() as backend:
        cupy._fake.stats.reset()
        fused = _run_gradx(name, kw, dtype, "cupy")
        launched = {k: v for k, v in cupy._fake.stats.ops.items() if k.startswith("kernel:")}
        assert backend.fused_kernel_failures() == {}
    assert sum(launched.values()) == len(P0) * len(GRADS), launched  # one per parameter
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
    for f, r, t in zip(fused, reference, _run_torch(name, kw), strict=True):
        assert f.dtype == np.dtype(dtype)
        np.testing.assert_allclose(f, r, **tol)
        np.testing.assert_allclose(f, t, rtol=1e-5 if dtype == "float32" else 1e-12,
                                   atol=1e-6 if dtype == "float32" else 1e-14)


def test_a_kernel_that_cannot_build_falls_back_with_nothing_changed():
    _standin()
    backend = gx._backend.resolve("cupy")
    backend._kernels.clear()  # the stand-in's ElementwiseKernel refuses to run CUDA C
    got = _run_gradx("SGD", dict(lr=0.1, momentum=0.9), "float32", "cupy")
    with gx.use_backend("numpy"):
        want = _run_gradx("SGD", dict(lr=0.1, momentum=0.9), "float32", "numpy")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
    failures = backend.fused_kernel_failures()
    assert "gradx_sgd_momentum" in failures and "CUDA C" in failures["gradx_sgd_momentum"]


def test_parameters_the_kernels_do_not_cover_take_the_array_code():
    _standin()
    with emulated_kernels() as backend:
        p = gx.tensor(np.ones(3, dtype="float16"), backend="cupy", requires_grad=True)
        p.grad = gx.tensor(np.ones(3, dtype="float16"), backend="cupy")
        gx.optim.Adam([p], lr=0.1).step()
        assert backend._kernels == {} or all(
            k.failure is None for k in backend._kernels.values())
    np.testing.assert_allclose(p.numpy(), 0.9, rtol=1e-3)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_kernels_match_the_array_code_on_a_gpu(case, monkeypatch):
    cupy = _cupy()
    if hasattr(cupy, "_fake"):
        pytest.skip("the fused kernels' CUDA C needs a GPU (the stand-in cannot compile it)")
    name, kw = case
    backend = gx._backend.resolve("cupy")
    fused = _run_gradx(name, kw, "float32", "cupy")
    assert backend.fused_kernel_failures() == {}
    monkeypatch.setattr(type(backend), "fused_kernel", lambda self, name: None)
    reference = _run_gradx(name, kw, "float32", "cupy")
    for f, r in zip(fused, reference, strict=True):
        np.testing.assert_allclose(f, r, rtol=1e-5, atol=1e-6)  # FMA contraction may differ
