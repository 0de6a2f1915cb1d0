"""Array backends for gradx, installed as the subpackage ``gradx.backends``.

Each module holds one :class:`~gradx.backends.base.Backend`: the few operations the
core needs that the Array API standard does not give (host transfer, scatter-add,
synchronize, random draws) and nothing else.
"""

from .base import Backend

__all__ = ["Backend"]
