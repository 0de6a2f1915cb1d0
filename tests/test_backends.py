"""Backend selection, scoping, entry points, transfers and the errors the contract names."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import gradx as gx
from gradx.backends.array_api_backend import ArrayAPIBackend


def test_available_backends_lists_the_cpu_ones():
    names = gx.available_backends()
    assert "numpy" in names and "array_api_strict" in names


def test_set_and_get_backend_round_trip():
    old = gx.get_backend()
    try:
        b = gx.set_backend("array_api_strict")
        assert gx.get_backend() is b and b.name == "array_api_strict"
        assert gx.tensor([1.0]).backend.name == "array_api_strict"
    finally:
        gx.set_backend(old)


def test_use_backend_is_scoped_and_thread_local(numpy_default):
    seen = {}
    with gx.use_backend("array_api_strict"):
        t = threading.Thread(target=lambda: seen.update(thread=gx.get_backend().name))
        t.start()
        t.join()
        seen["inside"] = gx.get_backend().name
    seen["after"] = gx.get_backend().name
    assert seen == {"thread": "numpy", "inside": "array_api_strict", "after": "numpy"}


def test_namespace_module_is_accepted():
    import array_api_strict

    with gx.use_backend(array_api_strict) as b:
        assert b.name == "array_api_strict"
        x = gx.ones((2,))
    assert type(x.data).__module__.startswith("array_api_strict")


def test_generic_backend_wraps_any_standard_namespace():
    import array_api_strict

    b = ArrayAPIBackend(array_api_strict, "custom")
    x = gx.tensor([1.0, 2.0], backend=b, requires_grad=True)
    (x * x).sum().backward()
    gx.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_cupy_unavailable_error_names_what_is_missing():
    if "cupy" in gx.available_backends():
        pytest.skip("CuPy and a CUDA device are present")
    with pytest.raises(gx.BackendUnavailableError) as info:
        gx.set_backend("cupy")
    msg = str(info.value)
    assert "gradx[cuda12]" in msg or "no CUDA device" in msg
    assert ("not installed" in msg) or ("CUDA device" in msg)


def test_unknown_backend_lists_known_ones():
    with pytest.raises(gx.BackendUnavailableError, match="numpy"):
        gx.set_backend("tpu-please")


def test_mixing_backends_in_one_op_raises():
    a = gx.tensor([1.0], backend="numpy")
    b = gx.tensor([1.0], backend="array_api_strict")
    with pytest.raises(gx.BackendMismatchError, match=r"numpy.*array_api_strict.*\.to\("):
        a + b


def test_raw_array_of_another_backend_raises():
    import array_api_strict

    a = gx.tensor([1.0], backend="numpy")
    with pytest.raises(gx.BackendMismatchError):
        gx.multiply(a, array_api_strict.asarray([1.0], dtype=array_api_strict.float32))


def test_to_is_differentiable_across_backends():
    x = gx.tensor([1.0, 2.0], backend="numpy", requires_grad=True)
    y = x.to("array_api_strict")
    assert y.backend.name == "array_api_strict"
    (y * y).sum().backward()
    assert x.grad.backend.name == "numpy"
    gx.testing.assert_allclose(x.grad, [2.0, 4.0])


def test_ops_run_where_inputs_live():
    x = gx.tensor([1.0], backend="array_api_strict")
    with gx.use_backend("numpy"):
        assert (x * 2).backend.name == "array_api_strict"


def test_tensor_creation_dtypes():
    assert gx.tensor([1.0]).dtype == np.float32
    assert gx.tensor(np.array([1.0])).dtype == np.float64  # NumPy float64 keeps float64
    assert gx.tensor([1, 2]).dtype == np.int64
    with gx.default_dtype("float64"):
        assert gx.tensor([1.0]).dtype == np.float64
        assert gx.zeros((2,)).dtype == np.float64
    assert gx.tensor([1.0]).dtype == np.float32


def test_numpy_item_dlpack_and_namespace(backend):
    x = gx.tensor([[1.0, 2.0]])
    assert isinstance(x.numpy(), np.ndarray)
    assert x.sum().item() == 3.0
    assert x.__array_namespace__() is gx
    assert np.from_dlpack(x).tolist() == [[1.0, 2.0]]


def _numpy_xp():
    from gradx._backend import resolve

    return resolve("numpy").xp


_SHORTCUT_ARRAYS = [np.arange(6.0).reshape(2, 3), np.float32(2.5) * np.ones((4,), np.float32),
                   np.arange(6).reshape(3, 2)[::2], np.array(3.0), np.zeros((0, 2))]


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("case", range(len(_SHORTCUT_ARRAYS)))
def test_numpy_namespace_reductions_match_numpy(name, case):
    """The NumPy backend calls ufunc.reduce directly; results must be NumPy's own."""
    xp, x = _numpy_xp(), _SHORTCUT_ARRAYS[case]
    assert getattr(xp, name) is not getattr(np, name)  # the shortcut is what this checks
    for axis, keepdims in [(None, False), (None, True), (0, False), (-1, True)]:
        if x.ndim == 0 and axis is not None:
            continue
        kw = {"axis": axis, "keepdims": keepdims}
        if x.size == 0 and name in ("max", "min") and axis in (None, 0):  # empty reduced axis
            with pytest.raises(ValueError):
                getattr(xp, name)(x, **kw)
            continue
        want = getattr(np, name)(x, **kw)
        got = getattr(xp, name)(x, **kw)
        assert type(got) is type(want) and got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("args", "kwargs"), [
    (((),), {}), (((2, 3),), {"dtype": np.float32}), ((3, bool), {}),
    (((2, 2), np.int64, "F"), {}), (((2,),), {"device": "cpu"}), ((0,), {"dtype": complex}),
])
def test_numpy_namespace_ones_matches_numpy(args, kwargs):
    assert _numpy_xp().ones is not np.ones  # the shortcut is what this checks
    got, want = _numpy_xp().ones(*args, **kwargs), np.ones(*args, **kwargs)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.flags.f_contiguous == want.flags.f_contiguous
    np.testing.assert_array_equal(got, want)


def test_entry_point_backend_registration():
    calls = []

    def factory():
        import array_api_strict

        calls.append(1)
        return ArrayAPIBackend(array_api_strict, "plugin")

    gx.register_backend("plugin", factory)
    with gx.use_backend("plugin") as b:
        assert b.name == "plugin" and calls == [1]


def test_entry_points_are_declared_in_metadata():
    from importlib import metadata

    names = {ep.name for ep in metadata.entry_points(group="gradx.backends")}
    assert {"numpy", "cupy", "array_api_strict"} <= names


def test_env_var_chooses_default_backend():
    code = "import gradx as gx; print(gx.get_backend().name)"
    env = dict(os.environ, GRADX_BACKEND="array_api_strict")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "array_api_strict"


def test_core_never_imports_cupy_or_computes_with_numpy():
    root = os.path.join(os.path.dirname(gx.__file__))
    offenders = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            # host I/O only: checkpoints, state dicts and test helpers read NumPy arrays
            if f.endswith(".py") and f not in ("testing.py", "compare.py", "io.py", "module.py"):
                text = open(os.path.join(dirpath, f)).read()
                if "import cupy" in text or "import numpy" in text:
                    offenders.append(f)
    assert offenders == []


def test_backends_subpackage_is_gradx_backends():
    import gradx.backends

    assert gradx.backends.__name__ == "gradx.backends"
    code = "import backends"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(gx.__file__)) + "/tests")
    assert out.returncode != 0  # no top-level package named `backends` is installed


def test_regular_install_ships_backends_inside_gradx(tmp_path):
    root = os.path.dirname(os.path.dirname(gx.__file__))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(tmp_path / "site"), root],
                   check=True, capture_output=True, cwd=tmp_path)
    assert (tmp_path / "site" / "gradx" / "backends" / "numpy_backend.py").is_file()
    assert not (tmp_path / "site" / "backends").exists()
    code = ("import gradx, gradx.backends.numpy_backend as m; "
            "print(m.__file__); print(gradx.tensor([1.0]).backend.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(tmp_path / "site"),
                                                  GRADX_BACKEND="numpy"),
                         check=True)
    assert str(tmp_path / "site") in out.stdout and out.stdout.strip().endswith("numpy")


def test_cupy_namespace_table_speaks_the_standard():
    """The CuPy table, built over NumPy (which shares CuPy's older spellings), answers with
    Array API keywords: correction, min/max, stable, descending."""
    from gradx.backends.cupy_backend import _namespace

    xp = _namespace(np)
    x = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, 1.5]])
    np.testing.assert_allclose(xp.var(x, axis=1, correction=1), np.var(x, axis=1, ddof=1))
    np.testing.assert_allclose(xp.clip(x, min=1.0, max=2.0), np.clip(x, 1.0, 2.0))
    np.testing.assert_allclose(xp.sort(x, axis=-1, stable=True), np.sort(x, axis=-1))
    np.testing.assert_allclose(xp.sort(x, axis=-1, descending=True), -np.sort(-x, axis=-1))
    assert xp.argsort(x, axis=0, descending=True).tolist() == [[0, 1, 0], [1, 0, 1]]
    for name in ("asin", "acos", "atan", "atan2", "pow", "concat", "permute_dims", "astype",
                 "matrix_transpose", "cumulative_sum", "isdtype"):
        assert callable(getattr(xp, name)), name
