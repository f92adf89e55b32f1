"""Where media is discovered."""

from likeness.sources.base import MediaRef
from likeness.sources.local import Refused, discover, read_file, read_head

__all__ = ["MediaRef", "Refused", "discover", "read_file", "read_head"]
