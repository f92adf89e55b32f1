"""Where media is discovered."""

from likeness.sources.base import MediaRef
from likeness.sources.local import discover

__all__ = ["MediaRef", "discover"]
