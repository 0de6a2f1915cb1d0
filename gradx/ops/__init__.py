"""Built-in primitives, one family per module; each op's rules sit right under it."""

# Tensor is defined before any primitive module runs: the dispatcher needs the class.
from .. import _tensor  # noqa: F401
