"""``gradx.numpy.fft``: ``fftshift`` and ``ifftshift`` (rolls). gradx has no complex dtype
yet, so every transform raises :class:`NotDifferentiableError` saying so (autograd's
``fft``/``rfft`` family is in the coverage gap, :mod:`gradx.numpy._coverage`)."""

from __future__ import annotations

from typing import Any

from ..errors import NotDifferentiableError

NAMES = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
         "rfftn", "irfftn")


def _missing(name: str) -> Any:
    def f(*args: Any, **kwargs: Any) -> Any:
        raise NotDifferentiableError(
            f"gradx.numpy.fft.{name}: gradx has no complex dtype yet, so no FFT; compute it "
            "on t.numpy() outside the graph, or use a real transform built from matmul "
            "(a DFT matrix) to keep the gradient")

    f.__name__ = f.__qualname__ = name
    return f


for _n in NAMES:
    globals()[_n] = _missing(_n)


def fftshift(x: Any, axes: Any = None) -> Any:
    """The zero-frequency entry moved to the centre: a roll by ``n // 2`` along ``axes``."""
    from . import _t, roll

    x = _t(x)
    axes = tuple(range(x.ndim)) if axes is None else (axes,) if isinstance(axes, int) else axes
    return roll(x, [x.shape[a] // 2 for a in axes], axes)


def ifftshift(x: Any, axes: Any = None) -> Any:
    """The inverse of :func:`fftshift`: a roll by ``-(n // 2)``."""
    from . import _t, roll

    x = _t(x)
    axes = tuple(range(x.ndim)) if axes is None else (axes,) if isinstance(axes, int) else axes
    return roll(x, [-(x.shape[a] // 2) for a in axes], axes)
