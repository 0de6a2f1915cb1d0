"""Workload sizes and their seeded input data, generated once on the host with NumPy.

Every framework receives copies of the same arrays, so gradients can be compared exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

WORKLOADS = ("tiny_ops", "mlp_step", "deep_narrow", "hvp", "memory", "train_digits")

# The sizes the issue asks for. ``SMALL`` keeps the same structure at a size the tests can afford.
FULL: dict[str, dict[str, int]] = {
    "tiny_ops": {"steps": 200, "width": 16},
    "mlp_step": {"batch": 256, "n_in": 784, "hidden": 1024, "n_out": 10},
    "deep_narrow": {"layers": 64, "width": 128, "batch": 64},
    "hvp": {"n": 512},
    "memory": {"layers": 32, "width": 2048, "batch": 512},
}
SMALL: dict[str, dict[str, int]] = {
    "tiny_ops": {"steps": 12, "width": 4},
    "mlp_step": {"batch": 8, "n_in": 12, "hidden": 16, "n_out": 5},
    "deep_narrow": {"layers": 6, "width": 8, "batch": 4},
    "hvp": {"n": 9},
    "memory": {"layers": 3, "width": 16, "batch": 8},
}
# On the GPU the batched workloads run at batch 1024.
GPU: dict[str, dict[str, int]] = {
    "tiny_ops": dict(FULL["tiny_ops"]),
    "mlp_step": {**FULL["mlp_step"], "batch": 1024},
    "deep_narrow": {**FULL["deep_narrow"], "batch": 1024},
    "hvp": dict(FULL["hvp"]),
}


def tiny_ops_primitives(steps: int) -> int:
    """Primitives in one tiny_ops forward pass: multiply, add, tanh per step, then sum."""
    return 3 * steps + 1


def make_data(workload: str, size: dict[str, int]) -> dict[str, Any]:
    """Seeded inputs and initial parameters; ``params`` is a list in a fixed order."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    if workload == "tiny_ops":
        s, w = size["steps"], size["width"]
        y0 = rng.standard_normal(w).astype(f32)
        ws = [rng.uniform(0.5, 1.5, w).astype(f32) for _ in range(s)]
        bs = [(0.1 * rng.standard_normal(w)).astype(f32) for _ in range(s)]
        return {"y0": y0, "params": ws + bs}
    if workload == "mlp_step":
        dims = [size["n_in"], size["hidden"], size["hidden"], size["n_out"]]
        x = rng.standard_normal((size["batch"], size["n_in"])).astype(f32)
        labels = rng.integers(0, size["n_out"], size["batch"]).astype(np.int64)
        return {"x": x, "labels": labels, "params": _linear_params(rng, dims, relu=True)}
    if workload in ("deep_narrow", "memory"):
        n, w = size["layers"], size["width"]
        x = rng.standard_normal((size["batch"], w)).astype(f32)
        relu = workload == "memory"
        params = _linear_params(rng, [w] * (n + 1), relu=relu)
        if relu:  # memory: regress onto zero, so the loss adds no large input of its own
            y = np.zeros((size["batch"], w), f32)
        else:
            y = rng.standard_normal((size["batch"], w)).astype(f32)
        return {"x": x, "y": y, "params": params}
    if workload == "hvp":
        n = size["n"]
        a = rng.standard_normal((n, n)) / np.sqrt(n)
        return {"a": a, "x": rng.standard_normal(n), "v": rng.standard_normal(n), "params": []}
    raise ValueError(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")


def _linear_params(rng: np.random.Generator, dims: list[int], relu: bool) -> list[np.ndarray]:
    """[W0, b0, W1, b1, ...] with W of shape (fan_in, fan_out); He or Xavier scaled."""
    params = []
    for fan_in, fan_out in zip(dims[:-1], dims[1:], strict=True):
        scale = np.sqrt((2.0 if relu else 1.0) / fan_in)
        params.append((scale * rng.standard_normal((fan_in, fan_out))).astype(np.float32))
        params.append((0.01 * rng.standard_normal(fan_out)).astype(np.float32))
    return params
