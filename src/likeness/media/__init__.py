"""Bytes to pixels, with limits."""

from likeness.media.decode import Media, decode, sniff

__all__ = ["Media", "decode", "sniff"]
