"""The compiled extension, loaded once: None when it was not built or is refused.

``GRADX_PURE_PYTHON=1`` refuses it at import, so every compiled piece (the hot path in
``gradx._hot`` and the namespace lookup of ``gradx._backend``) runs its Python reference.
"""

from __future__ import annotations

import os
from types import ModuleType

try:
    from . import _speedups as built
except ImportError:  # installed without a C compiler
    built = None


def pure_python_requested() -> bool:
    """Whether ``GRADX_PURE_PYTHON`` asks for the Python hot path."""
    return os.environ.get("GRADX_PURE_PYTHON", "") in ("1", "true", "yes")


def extension() -> ModuleType | None:
    """The extension to use for pieces chosen once per process, or None."""
    return None if built is None or pure_python_requested() else built
