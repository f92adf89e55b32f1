"""Typed errors. Each carries a stable ``kind`` stored with the file it concerns, and a message for people."""

from __future__ import annotations


class LikenessError(Exception):
    kind = "error"


class MediaError(LikenessError):
    """The bytes cannot be turned into pixels we are willing to analyse."""

    kind = "media"


class EmptyFile(MediaError):
    kind = "empty"


class UnsupportedFormat(MediaError):
    kind = "unsupported_format"


class CorruptMedia(MediaError):
    kind = "corrupt"


class TooLarge(MediaError):
    kind = "too_large"


class TooManyFrames(MediaError):
    kind = "too_many_frames"


class FetchError(LikenessError):
    kind = "fetch"


class BlockedAddress(FetchError):
    """A URL points at a private, loopback, link-local or otherwise non-public address (SSRF guard)."""

    kind = "blocked_address"


class EnrollmentError(LikenessError):
    kind = "enrollment"


class NotFound(LikenessError):
    kind = "not_found"
