"""compare_backends: outputs, gradients, per-op divergence, tolerances and the two report forms.

The CPU pair is numpy vs array_api_strict (the strict namespace runs NumPy underneath, so
honest computations agree exactly); a deliberately backend-dependent primitive stands in for
a GPU kernel that disagrees."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

import gradx as gx
from gradx import _compare_report, compare
from gradx.errors import BackendUnavailableError

PAIR = ("numpy", "array_api_strict")
pytestmark = pytest.mark.skipif("array_api_strict" not in gx.available_backends(),
                                reason="array_api_strict is not installed")


def _on_strict(x) -> bool:
    return "strict" in gx.array_namespace(x).__name__


def _unlisted(prim):
    """Keep a test-only primitive out of gx.primitives(), which test_coverage checks against
    the op table; calling it still goes through the dispatcher like any other."""
    gx._primitive._REGISTRY.pop(prim.name)
    return prim


@_unlisted
@gx.primitive
def skew(x):
    """x, plus 1e-3 on array_api_strict only: a kernel that disagrees across backends."""
    return x + (1e-3 if _on_strict(x) else 0.0)


gx.defvjp(skew, lambda g, ans, x: g)


@_unlisted
@gx.primitive
def scale(x, *, eps):
    """x * (1 + eps) on array_api_strict only: a controlled relative error."""
    return x * (1.0 + eps) if _on_strict(x) else x * 1.0


gx.defvjp(scale, lambda g, ans, x, *, eps: g)


@_unlisted
@gx.primitive
def bad_rule(x):
    """Identical forward; the VJP rule is off by 1e-3 on array_api_strict."""
    return x * 2.0


gx.defvjp(bad_rule, lambda g, ans, x: g * (2.001 if _on_strict(x) else 2.0))


def _params(dtype: str = "float32") -> dict:
    rng = np.random.default_rng(0)
    return {"w1": rng.standard_normal((3, 4)).astype(dtype), "b1": np.zeros(4, dtype),
            "w2": rng.standard_normal((4, 2)).astype(dtype)}


def _x(dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(1).standard_normal((5, 3)).astype(dtype)


def mlp(params, x):
    h = gx.tanh(x @ params["w1"] + params["b1"])
    return gx.mean((h @ params["w2"]) ** 2)


def test_identical_results_pass(backend):
    report = gx.testing.compare_backends(mlp, _params(), _x(), backends=("numpy", backend))
    assert report.ok, report
    assert [e.name for e in report.entries] == [
        "out", "grad params['w1']", "grad params['b1']", "grad params['w2']", "grad x"]
    assert [e.kind for e in report.entries] == ["output"] + ["grad"] * 4
    assert report.entries[1].shape == (3, 4) and report.entries[1].dtype == "float32"
    if backend != "cupy":  # the CPU backends share NumPy's kernels
        assert all(e.max_abs == 0 and e.max_rel == 0 for e in report.entries)
    assert report.divergence is None and report.skipped == {}


def test_per_op_names_first_divergent_primitive_and_line():
    where = []

    def f(params, x):
        h = gx.tanh(x @ params["w1"] + params["b1"])
        where.append(sys._getframe().f_lineno + 1)
        h = skew(h)
        return gx.mean((h @ params["w2"]) ** 2)

    report = gx.testing.compare_backends(f, _params(), _x(), backends=PAIR, per_op=True)
    assert not report.ok
    d = report.divergence
    assert d is not None and d.op == "skew" and d.phase == "forward"
    assert d.index == 3  # matmul, add, tanh agree; skew is the fourth call
    assert d.backend == "array_api_strict" and d.reference == "numpy"
    assert d.inputs == ["(5, 4) float32"] and d.output == "(5, 4) float32"
    assert d.site.startswith(f"{__file__}:{where[0]} in f")
    assert d.max_abs == pytest.approx(1e-3, rel=1e-2)
    text = str(report)
    assert "primitive 'skew' (forward call #3)" in text
    assert f"test_compare.py:{where[0]}" in text
    assert report.ops_recorded is not None and report.ops_recorded > 3
    assert gx._primitive._recorder.get() is None


def test_gradients_are_compared_and_backward_divergence_is_located():
    report = gx.testing.compare_backends(lambda x: gx.sum(bad_rule(x)), _x(), backends=PAIR)
    out, grad = report.entries
    assert out.ok and out.max_abs == 0
    assert grad.kind == "grad" and grad.name == "grad x" and not grad.ok
    assert grad.max_abs == pytest.approx(1e-3, rel=1e-3)

    report = gx.testing.compare_backends(lambda x: gx.sum(bad_rule(x)), _x(), backends=PAIR,
                                         per_op=True)
    d = report.divergence
    assert d.phase == "backward" and d.op == "multiply"
    rule_line = next(i for i, line in enumerate(open(__file__), 1)
                     if line.startswith("gx.defvjp(bad_rule"))
    assert d.site.startswith(f"{__file__}:{rule_line} in <lambda>")


def test_no_grads_compares_outputs_only():
    report = gx.testing.compare_backends(mlp, _params(), _x(), backends=PAIR, grads=False)
    assert [e.name for e in report.entries] == ["out"] and report.ok


def test_nested_arguments_tensors_and_static_leaves():
    seen = []

    def f(batch, cfg, labels):
        (a, b), c = batch["pair"], batch["list"][0]
        seen.append((type(cfg["lr"]), labels.dtype))
        return {"loss": gx.sum(a * b * cfg["lr"]) + gx.sum(c), "n": gx.sum(labels)}

    with gx.use_backend("array_api_strict"):
        t = gx.tensor(np.ones((2, 2), "float32"))  # a Tensor input on another backend
    batch = {"pair": (np.full((2, 2), 3.0, "float32"), t),
             "list": [np.arange(3, dtype="float64")]}
    report = gx.testing.compare_backends(f, batch, {"lr": 0.5}, np.arange(4), backends=PAIR)
    assert report.ok, report
    names = [e.name for e in report.entries]
    assert names == ["out['loss']", "out['n']", "grad batch['pair'][0]",
                     "grad batch['pair'][1]", "grad batch['list'][0]"]
    assert {e.dtype for e in report.entries if e.kind == "grad"} == {"float32", "float64"}
    assert seen[0][0] is float and "int" in str(seen[0][1])


def test_float32_and_float64_tolerances():
    r32, a32 = compare.tolerance("float32")
    r64, a64 = compare.tolerance("float64")
    assert r64 < r32 * 1e-3 and a64 < a32 * 1e-3
    assert compare.tolerance("int64") == (0.0, 0.0)
    assert compare.tolerance("float32", rtol=0.1) == (0.1, a32)

    def f(x):
        return scale(x, eps=1e-7)

    x = np.linspace(1.0, 2.0, 6)
    within32 = gx.testing.compare_backends(f, x.astype("float32"), backends=PAIR, grads=False)
    assert within32.ok, within32
    assert 0 < within32.entries[0].max_rel < 1e-6
    beyond64 = gx.testing.compare_backends(f, x, backends=PAIR, grads=False)
    assert not beyond64.ok
    assert beyond64.entries[0].max_rel == pytest.approx(1e-7, rel=1e-3)
    loose = gx.testing.compare_backends(f, x, backends=PAIR, grads=False, rtol=1e-6)
    assert loose.ok and loose.entries[0].rtol == 1e-6


def test_diff_handles_nan_inf_zero_and_shape():
    ref = np.array([0.0, np.nan, np.inf, 1.0])
    same = compare._diff(ref.copy(), ref, None, None)
    assert same["ok"] and same["max_abs"] == 0
    d = compare._diff(np.array([1e-20, np.nan, np.inf, 1.0]), ref, None, None)
    assert d["ok"] and d["max_rel"] == 0  # no relative error where the reference is 0
    assert not compare._diff(np.array([0.0, 1.0, np.inf, 1.0]), ref, None, None)["ok"]
    bad = compare._diff(np.zeros(3), np.zeros(4), None, None)
    assert not bad["ok"] and "shape differs" in bad["note"]
    assert not compare._diff(np.zeros(2, "float32"), np.zeros(2), None, None)["ok"]


def test_calling_different_primitives_is_reported():
    def f(x):
        return gx.exp(x) if _on_strict(x) else gx.sin(x)

    report = gx.testing.compare_backends(f, _x(), backends=PAIR, per_op=True)
    d = report.divergence
    assert d.index == 0 and d.op == "exp" and "different primitives" in d.reason
    assert "'sin' on the reference" in d.reason


def test_fewer_calls_and_a_different_dtype_are_reported():
    def f(x):
        y = gx.sin(x)
        return gx.astype(y, dtype="float64") if _on_strict(x) else gx.sin(y)

    report = gx.testing.compare_backends(f, _x(), backends=PAIR, grads=False, per_op=True)
    entry = report.entries[0]
    assert not entry.ok and entry.dtype == "float64" and "dtype differs" in entry.note
    assert "dtype differs: float64 vs reference float32" in str(report)
    d = report.divergence
    assert d.index == 1 and d.op == "astype" and "'sin' on the reference" in d.reason

    def g(x):
        return gx.sin(x) if _on_strict(x) else gx.sin(gx.sin(x))

    d = gx.testing.compare_backends(g, _x(), backends=PAIR, grads=False, per_op=True).divergence
    assert "only 1 primitive call here" in d.reason and "went on to 'sin'" in d.reason
    assert report.to_dict()["entries"][0]["note"] == entry.note


def test_text_table_is_aligned():
    report = gx.testing.compare_backends(lambda x: (skew(x), gx.sum(x)), _x(), backends=PAIR)
    lines = str(report).splitlines()
    n = len(report.entries)
    header, dashes, rows = lines[1], lines[2], lines[3:3 + n]
    assert header.split()[:2] == ["kind", "name"] and set(dashes) <= {"-", " "}
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    assert len(spans) == len(_compare_report._HEADER)
    for row in [header, *rows]:
        assert len(row) == len(dashes)
        for i, (start, end) in enumerate(spans):
            cell = row[start:end]
            assert cell.strip() and row[end:end + 2] in ("  ", "")
            if i in _compare_report._RIGHT:
                assert cell[-1] != " "
            else:
                assert cell[0] != " "
    assert rows[0].endswith("FAIL") and "ok" in rows[-1]
    assert "NOT within tolerance" in lines[0]


def test_html_report_is_a_table():
    report = gx.testing.compare_backends(lambda x: skew(x), _x(), backends=PAIR, per_op=True)
    page = report._repr_html_()
    assert "<table>" in page and "</table>" in page
    assert page.count("<tr") == 1 + len(report.entries)
    assert "FAIL" in page and "skew" in page
    named = gx.testing.compare_backends(mlp, _params(), _x(), backends=PAIR)._repr_html_()
    assert "params[&#x27;w1&#x27;]" in named


def test_to_dict_is_json_ready():
    report = gx.testing.compare_backends(lambda x: skew(x), _x(), backends=PAIR, per_op=True)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ok"] is False and d["reference"] == "numpy"
    assert d["backends"] == list(PAIR) and d["divergences"][0]["op"] == "skew"
    assert d["entries"][0]["shape"] == [5, 3]


def test_unavailable_backends_raise_or_are_skipped():
    with pytest.raises(BackendUnavailableError, match="no_such_backend"):
        gx.testing.compare_backends(mlp, _params(), _x(), backends=("numpy", "no_such_backend"))
    report = gx.testing.compare_backends(mlp, _params(), _x(), skip_unavailable=True,
                                         backends=(*PAIR, "no_such_backend"))
    assert report.ok and list(report.skipped) == ["no_such_backend"]
    assert "skipped no_such_backend: " in str(report)
    alone = gx.testing.compare_backends(mlp, _params(), _x(), skip_unavailable=True,
                                        backends=("numpy", "no_such_backend"))
    assert alone.entries == [] and "nothing was compared" in str(alone)
    if "cupy" not in gx.available_backends():
        with pytest.raises(BackendUnavailableError, match="cupy"):
            gx.testing.compare_backends(mlp, _params(), _x())


def test_recorder_is_removed_after_an_error():
    def f(x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        gx.testing.compare_backends(f, _x(), backends=PAIR, per_op=True)
    assert gx._primitive._recorder.get() is None


def test_public_names():
    assert gx.compare_backends is gx.testing.compare_backends
    assert gx.testing.ComparisonReport is compare.ComparisonReport
    assert not {"skew", "scale", "bad_rule"} & set(gx.primitives())
