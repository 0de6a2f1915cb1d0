"""Every op-table row on every backend: finite differences against reverse and forward
mode up to the row's order, float32 gradients keep float32, and forward values match
NumPy's from the same host inputs."""

from __future__ import annotations

import numpy as np
import pytest
from op_table import Row, all_rows

import gradx as gx

ROWS = all_rows()


def sample(row: Row, seed: int = 0) -> list[np.ndarray]:
    """Host float64 inputs inside the row's domain."""
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(row.shapes):
        n = int(np.prod(shape)) if shape else 1
        if row.domain == "positive":
            a = rng.uniform(0.5, 2.0, shape)
        elif row.domain == "unit":
            a = rng.uniform(-0.8, 0.8, shape)
        elif row.domain == "distinct":  # no near-ties, so finite differences stay valid
            a = (rng.permutation(n) * 0.37 - 0.5 * n * 0.37 + rng.uniform(0, 0.05, n))
            a = a.reshape(shape)
        elif row.domain == "spd" and i == 0:
            m = rng.standard_normal(shape)
            a = m @ np.swapaxes(m, -1, -2) + shape[-1] * np.eye(shape[-1])
        else:
            a = rng.standard_normal(shape)
        if row.domain in ("real",) and row.name in ("floor", "ceil", "round"):
            a = np.floor(a * 4) / 4 + 0.11  # away from the jumps
        out.append(np.asarray(a, dtype=np.float64))
    return out


def _skip(row: Row, backend: str) -> None:
    if backend in row.skip_backends:
        pytest.skip(row.skip_backends[backend])


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_gradients(backend, row):
    _skip(row, backend)
    xs = [gx.tensor(h) for h in sample(row)]
    gx.testing.check_grads(row.fn, *xs, modes=row.modes, order=row.order)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_float32_gradients_keep_dtype(backend, row):
    _skip(row, backend)
    xs = [gx.tensor(h.astype(np.float32)) for h in sample(row)]
    out, vjp_fn = gx.vjp(row.fn, *xs)
    grads = vjp_fn(gx.ones_like(out))
    for x, g in zip(xs, grads, strict=True):
        assert g.shape == x.shape
        assert g.dtype == x.dtype, f"{row.id}: gradient dtype {g.dtype} for input {x.dtype}"


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_forward_matches_numpy(backend, row):
    _skip(row, backend)
    if backend == "numpy":
        pytest.skip("the reference itself")
    host = sample(row)
    here = row.fn(*[gx.tensor(h) for h in host])
    with gx.use_backend("numpy"):
        ref = row.fn(*[gx.tensor(h) for h in host])
    gx.testing.assert_allclose(here, ref, rtol=1e-10, atol=1e-12)
