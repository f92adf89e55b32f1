"""Bytes to pixels, with limits."""

from likeness.media.decode import IMAGE_FORMATS, SNIFF_BYTES, VIDEO_FORMATS, Media, decode, sniff
from likeness.media.encode import jpeg

__all__ = ["IMAGE_FORMATS", "SNIFF_BYTES", "VIDEO_FORMATS", "Media", "decode", "jpeg", "sniff"]
