"""Text from media, platforms and the file system, made safe to store and show.

PostgreSQL refuses NUL in ``text`` and ``jsonb`` and any string that is not valid UTF-8 (a lone surrogate is what
Python makes of undecodable bytes in a file name); one such string in a PNG text chunk, an EXIF field, a platform
caption or an error message used to stop a whole scan. Everything that leaves a file or a platform goes through
``clean`` (or ``clean_json``) before it is stored: control characters dropped, invalid code points replaced,
length bounded.
"""

from __future__ import annotations

import os
import re
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean(value: str, limit: int = 20_000) -> str:
    """``value`` without control characters (tab and newlines kept), invalid code points as U+FFFD, at most
    ``limit`` characters (an ellipsis marks a cut)."""
    value = _SURROGATE.sub("\ufffd", _CONTROL.sub("", value))
    return value if len(value) <= limit else value[: max(0, limit - 1)] + "…"


def clean_json(value: Any, limit: int = 2_000, items: int = 200, depth: int = 6) -> Any:
    """A JSON-safe copy: strings (keys too) cleaned and bounded, lists and objects cut at ``items`` entries and
    ``depth`` levels, anything else that is not a JSON scalar turned into text."""
    if isinstance(value, str):
        return clean(value, limit)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth <= 0:
        return clean(repr(value), limit)
    if isinstance(value, dict):
        pairs = list(value.items())[:items]
        return {clean(str(k), 200): clean_json(v, limit, items, depth - 1) for k, v in pairs}
    if isinstance(value, list | tuple):
        return [clean_json(v, limit, items, depth - 1) for v in list(value)[:items]]
    return clean(str(value), limit)


def readable_path(path: str | bytes) -> str:
    """A file name as people can read it and PostgreSQL can store it: bytes that are not UTF-8 shown as ``\\xNN``
    (the exact bytes are kept beside it where they matter, see ``sources.local``)."""
    raw = path if isinstance(path, bytes) else os.fsencode(path)
    return clean(raw.decode("utf-8", errors="backslashreplace"), 1 << 16)


def is_utf8(path: str) -> bool:
    """Whether a name the OS gave decodes as UTF-8 (no surrogate escapes in it)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
