"""Bytes to pixels, with limits."""

from likeness.media.decode import Media, decode, sniff
from likeness.media.encode import jpeg

__all__ = ["Media", "decode", "jpeg", "sniff"]
