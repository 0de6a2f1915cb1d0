"""autograd's public ``autograd.numpy`` functions (autograd 1.9) and which ones gradx.numpy has.

``AUTOGRAD_NUMPY`` lists the functions autograd differentiates (``numpy_vjps.py``,
``numpy_jvps.py``, the compositions of ``numpy_wrapper.py``) and the ones it marks
non-differentiable but lets through (``nograd_functions``); ``AUTOGRAD_LINALG`` those of
``autograd.numpy.linalg`` with a rule; ``AUTOGRAD_FFT`` those of ``autograd.numpy.fft``.
Names internal to autograd (``concatenate_args``, ``_primitive_mean`` ...) are listed by their
public name.

``GAP`` is what gradx.numpy lacks, with why: no complex dtype (so no FFT, ``angle``, complex
parts beyond the real case) and no eigen/Cholesky/full-SVD primitive yet.
``covered()`` and ``gap()`` compute the split from the module itself.
"""

from __future__ import annotations

AUTOGRAD_NUMPY = (
    # differentiable (numpy_vjps.py / numpy_jvps.py / numpy_wrapper.py)
    "abs", "absolute", "add", "amax", "amin", "angle", "append", "arccos", "arccosh", "arcsin",
    "arcsinh", "arctan", "arctan2", "arctanh", "array", "array_split", "atleast_1d",
    "atleast_2d", "atleast_3d", "broadcast_to", "clip", "column_stack", "concatenate", "conj",
    "conjugate", "cos", "cosh", "cross", "cumsum", "deg2rad", "degrees", "diag", "diagonal",
    "diff", "divide", "dot", "dsplit", "dstack", "einsum", "exp", "exp2", "expand_dims",
    "expm1", "fabs", "fliplr", "flipud", "fmax", "fmin", "full", "gradient", "hsplit",
    "hstack", "hypot", "imag", "inner", "kron", "linspace", "log", "log10", "log1p", "log2",
    "logaddexp", "logaddexp2", "make_diagonal", "matmul", "max", "maximum", "mean", "min",
    "minimum", "mod", "moveaxis", "msort", "multiply", "nan_to_num", "negative", "outer",
    "pad", "partition", "power", "prod", "rad2deg", "radians", "ravel", "real",
    "real_if_close", "reciprocal", "remainder", "repeat", "reshape", "roll", "rollaxis",
    "rot90", "row_stack", "select", "sin", "sinc", "sinh", "sort", "split", "sqrt", "square",
    "squeeze", "stack", "std", "subtract", "sum", "swapaxes", "tan", "tanh", "tensordot",
    "tile", "trace", "transpose", "tril", "triu", "true_divide", "var", "vsplit", "vstack",
    "where",
    # let through without a gradient (nograd_functions)
    "all", "allclose", "any", "argmax", "argmin", "argpartition", "argsort", "argwhere",
    "around", "array_equal", "array_equiv", "ceil", "count_nonzero", "empty_like", "equal",
    "fix", "flatnonzero", "floor", "floor_divide", "full_like", "greater", "greater_equal",
    "isclose", "iscomplex", "iscomplexobj", "isfinite", "isinf", "isnan", "isneginf",
    "isposinf", "isreal", "isscalar", "less", "less_equal", "logical_and", "logical_not",
    "logical_or", "logical_xor", "ndim", "nonzero", "not_equal", "ones_like", "result_type",
    "rint", "round", "searchsorted", "shape", "sign", "size", "trunc", "zeros_like",
)

AUTOGRAD_LINALG = ("cholesky", "det", "eig", "eigh", "inv", "norm", "pinv", "slogdet",
                   "solve", "svd")

AUTOGRAD_FFT = ("fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2",
                "irfft2", "rfftn", "irfftn", "fftshift", "ifftshift")

GAP = {
    "angle": "needs complex numbers (gradx has no complex dtype yet)",
    "make_diagonal": "autograd's own helper (a diagonal embedded along two axes); "
                     "gradx.numpy.diag covers the 1-D case",
    "linalg.cholesky": "no Cholesky primitive yet",
    "linalg.eig": "no eigendecomposition primitive (and no complex dtype)",
    "linalg.eigh": "no symmetric eigendecomposition primitive yet",
    "linalg.pinv": "needs the full SVD",
    "linalg.slogdet": "no log-determinant primitive yet (log(abs(det)) overflows past the "
                      "float range)",
    "linalg.svd": "singular values only (compute_uv=False); no singular vectors yet",
    **{f"fft.{n}": "needs complex numbers (gradx has no complex dtype yet)"
       for n in AUTOGRAD_FFT if not n.endswith("shift")},
}


def _exists(qualified: str) -> bool:
    import gradx.numpy as gnp

    obj = gnp
    for part in qualified.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return False
    return callable(obj)


def all_names() -> list[str]:
    """Every autograd name, submodule names qualified (``linalg.inv``)."""
    return ([*AUTOGRAD_NUMPY] + [f"linalg.{n}" for n in AUTOGRAD_LINALG]
            + [f"fft.{n}" for n in AUTOGRAD_FFT])


def covered() -> list[str]:
    """autograd names gradx.numpy computes (with gradients where autograd has them)."""
    return [n for n in all_names() if n not in GAP and _exists(n)]


def gap() -> dict[str, str]:
    """autograd names gradx.numpy does not cover, with the reason."""
    return {n: GAP.get(n, "missing") for n in all_names() if n in GAP or not _exists(n)}
