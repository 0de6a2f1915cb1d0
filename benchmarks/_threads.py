"""Pin every library to the same thread count; must run before NumPy, torch or JAX import."""

from __future__ import annotations

import os

_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def thread_env(n: int) -> dict[str, str]:
    """Environment variables that give NumPy's BLAS, torch and XLA ``n`` threads each."""
    env = {name: str(n) for name in _THREAD_VARS}
    eigen = "false" if n == 1 else "true"
    xla = [f for f in os.environ.get("XLA_FLAGS", "").split() if "multi_thread_eigen" not in f
           and "intra_op_parallelism_threads" not in f]
    xla += [f"--xla_cpu_multi_thread_eigen={eigen}", f"intra_op_parallelism_threads={n}"]
    env["XLA_FLAGS"] = " ".join(xla)
    return env


def pin_threads(n: int) -> None:
    """Set the thread variables in this process (effective only before the libraries load)."""
    os.environ.update(thread_env(n))


def pin_torch(n: int) -> None:
    """torch reads OMP_NUM_THREADS at import, but set it explicitly as well."""
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
