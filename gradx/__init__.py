"""gradx: reverse-mode automatic differentiation written once against the Array API.

The same tape and VJP rules run on NumPy (CPU), CuPy (CUDA) and any Array API namespace.
"""

from __future__ import annotations

import os as _os

# Running from a source checkout: ``backends/`` sits beside ``gradx/`` rather than inside it
# (installs map it to ``gradx.backends``), so let the package find it there too.
_here = _os.path.dirname(__file__)
if not _os.path.isdir(_os.path.join(_here, "backends")):
    _beside = _os.path.join(_os.path.dirname(_here), "backends")
    if _os.path.isfile(_os.path.join(_beside, "base.py")):
        __path__.append(_os.path.dirname(_here))  # noqa: F821

from . import _hot, linalg, random, testing  # noqa: E402  (_hot: the compiled hot path)
from ._backend import (  # noqa: E402
    array_namespace,
    available_backends,
    backend_of,
    get_backend,
    register_backend,
    set_backend,
    use_backend,
)
from ._primitive import (  # noqa: E402
    Primitive,
    defjvp,
    defjvp_argnum,
    defvjp,
    defvjp_argnum,
    primitive,
    primitives,
)
from ._tape import detect_anomaly, enable_grad, is_grad_enabled, no_grad  # noqa: E402
from ._tensor import Tensor  # noqa: E402
from .autograd_compat import (  # noqa: E402
    elementwise_grad,
    make_ggnvp,
    make_hvp,
    make_jvp,
    make_vjp,
)
from .checkpoint import checkpoint  # noqa: E402
from .errors import (  # noqa: E402
    AnomalyError,
    ArgumentError,
    BackendMismatchError,
    BackendUnavailableError,
    CheckpointError,
    DTypeError,
    GradxError,
    GraphError,
    NotDifferentiableError,
    OpError,
    OptimizerError,
    ShapeError,
    StateDictError,
)
from .ops.activations import erf  # noqa: E402
from .ops.comparison import (  # noqa: E402
    equal,
    greater,
    greater_equal,
    isfinite,
    isinf,
    isnan,
    less,
    less_equal,
    logical_and,
    logical_not,
    logical_or,
    not_equal,
)
from .ops.creation import (  # noqa: E402
    arange,
    asarray,
    default_dtype,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    get_default_dtype,
    linspace,
    ones,
    ones_like,
    set_default_dtype,
    tensor,
    zeros,
    zeros_like,
)
from .ops.elementwise import (  # noqa: E402
    abs,
    acos,
    add,
    asin,
    astype,
    atan,
    atan2,
    ceil,
    clip,
    cos,
    cosh,
    divide,
    exp,
    expm1,
    floor,
    log,
    log1p,
    maximum,
    minimum,
    multiply,
    negative,
    positive,
    pow,
    round,
    sigmoid,
    sign,
    sin,
    sinh,
    sqrt,
    square,
    subtract,
    tan,
    tanh,
    where,
)
from .ops.indexing import getitem, sort, take, take_along_axis  # noqa: E402
from .ops.linalg import einsum, matmul, matrix_transpose, outer, tensordot, vecdot  # noqa: E402
from .ops.masking import masked_fill, tril, triu  # noqa: E402
from .ops.reductions import (  # noqa: E402
    argmax,
    argmin,
    argsort,
    cumsum,
    cumulative_sum,
    log_softmax,
    logsumexp,
    max,
    mean,
    min,
    prod,
    softmax,
    std,
    sum,
    var,
)
from .ops.shape import (  # noqa: E402
    broadcast_to,
    concat,
    expand_dims,
    flip,
    moveaxis,
    permute_dims,
    reshape,
    split,
    squeeze,
    stack,
    tile,
    unstack,
)
from .transforms import (  # noqa: E402
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    stop_gradient,
    value_and_grad,
    vjp,
)

float16, float32, float64 = "float16", "float32", "float64"
int8, int16, int32, int64 = "int8", "int16", "int32", "int64"
uint8 = "uint8"
bool_ = "bool"
__version__ = "0.1.0"
__array_api_version__ = "2023.12"


def __getattr__(name: str):  # lazy: training modules load on first use
    import importlib

    if name in ("nn", "optim", "io", "numpy"):
        return importlib.import_module(f"gradx.{name}")
    if name in ("save", "load"):
        return getattr(importlib.import_module("gradx.io"), name)
    if name == "compare_backends":
        return testing.compare_backends
    raise AttributeError(f"module 'gradx' has no attribute {name!r}")
