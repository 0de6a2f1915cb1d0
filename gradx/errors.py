"""Every exception gradx raises; each message names the op, the shapes, dtypes or
backends involved, and what to do."""

from __future__ import annotations


class GradxError(Exception):
    """Base class of gradx's own errors."""


class BackendUnavailableError(GradxError, RuntimeError):
    """A backend was asked for on a machine that cannot run it."""


class BackendMismatchError(GradxError, ValueError):
    """Tensors from two backends met in one op; gradx never transfers implicitly."""


class NotDifferentiableError(GradxError, TypeError):
    """A gradient was requested through a primitive argument that has no VJP rule."""


class ShapeError(GradxError, ValueError):
    """Shapes that cannot work together, or a rule returned a gradient of the wrong shape."""


class DTypeError(GradxError, TypeError):
    """A dtype that the op cannot take (e.g. requires_grad on an integer tensor)."""


class GraphError(GradxError, RuntimeError):
    """Misuse of the recorded graph: a second backward through freed values, a
    saved value modified in place, a non-scalar output without a seed."""


class OpError(GradxError, RuntimeError):
    """An op's implementation or rule failed; wraps the backend's exception."""


class ArgumentError(GradxError, ValueError):
    """A value outside what the function accepts (a reduction name, a probability, a label)."""


class StateDictError(GradxError, ValueError):
    """A state dict whose keys or shapes do not fit the module it is loaded into."""


class OptimizerError(GradxError, ValueError):
    """A bad hyperparameter, parameter group, or optimizer state dict."""


class CheckpointError(GradxError, ValueError):
    """A file that is not a readable gradx checkpoint, or an object that cannot be saved."""


class AnomalyError(GradxError, FloatingPointError):
    """NaN or infinity appeared under ``detect_anomaly``."""


def describe(value: object) -> str:
    """Short ``shape dtype @backend`` description of an argument for messages."""
    shape = getattr(value, "shape", None)
    if shape is None:
        return type(value).__name__
    dtype = getattr(value, "dtype", "?")
    backend = getattr(value, "backend", None)
    where = f" @{backend.name}" if backend is not None and hasattr(backend, "name") else ""
    return f"{tuple(shape)} {dtype}{where}"
