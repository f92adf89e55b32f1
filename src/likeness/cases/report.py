"""A self-contained HTML report: for each match the reference face beside the face found, score, tier, source.

Found crops are cut at report time from what the caller's ``read`` gives for a match (we keep embeddings, not
pictures: frozen evidence, or a local file), so this module does no I/O policy of its own. A report holds names
and faces in clear: it is created readable by its owner only (0600), and withdrawal cannot reach it afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image, ImageFilter
from sqlalchemy.orm import Session

from likeness.cases.review import MatchRow, list_matches
from likeness.errors import InvalidInput, LikenessError
from likeness.media import decode, jpeg
from likeness.registry.subjects import reference_crop
from likeness.settings import Settings
from likeness.store.crypto import Box

Reader = Callable[[MatchRow], bytes]
_env = Environment(loader=PackageLoader("likeness.cases"), autoescape=select_autoescape())


def render(session: Session, box: Box, settings: Settings, read: Reader, status: str | None = None) -> tuple[str, int]:
    """The report's HTML and how many matches it shows."""
    rows = list_matches(session, box, status)
    references: dict[int, str | None] = {}
    items = []
    for row in rows:
        if row.subject_id is not None and row.subject_id not in references:
            references[row.subject_id] = _reference_crop(session, box, row.subject_id)
        found, note = _found_crop(row, settings, read)
        items.append(
            {
                "row": row,
                "reference": references.get(row.subject_id) if row.subject_id else None,
                "found": found,
                "note": note,
            }
        )
    html = _env.get_template("report.html").render(
        items=items, generated=datetime.now(UTC).isoformat(timespec="seconds"), total=len(rows)
    )
    return html, len(rows)


def write(path: Path, html: str) -> None:
    """Atomically, into a file created with mode 0600 (mkstemp's), never widened by the umask or a chmod."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path.parent}: no such folder") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(html)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _reference_crop(session: Session, box: Box, subject_id: int) -> str | None:
    crop = reference_crop(session, box, subject_id)
    return _data_uri(crop) if crop else None


def _found_crop(row: MatchRow, settings: Settings, read: Reader) -> tuple[str | None, str]:
    crop, note = found_jpeg(row, settings, read)
    return (_data_uri(crop) if crop else None), note


def found_jpeg(row: MatchRow, settings: Settings, read: Reader, clear: bool = False) -> tuple[bytes | None, str]:
    """The face found (or the picture a hash matched) as a JPEG, and a note; blurred when sensitive unless
    ``clear`` (a reviewer chose to see it). None, with why, when the source cannot be read now."""
    try:
        media = decode(read(row), settings.media)
    except (LikenessError, OSError) as exc:
        return None, f"source not available now: {exc}"
    pixels = next((f.pixels for f in media.each_frame() if f.index == row.frame), media.pixels)
    if row.face_box:
        pixels = _crop(pixels, row.face_box, media.scale)
    if not pixels.size:
        return None, "the face is not inside the picture read now"
    if sensitive(row, settings) and not clear:
        # A hash match is a copy of someone's intimate image: never shown in clear unless asked for.
        blurred = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(max(pixels.shape[:2]) / 25))
        return jpeg(np.asarray(blurred), max_side=200, quality=70), "blurred: open the source to review"
    return jpeg(pixels, max_side=400 if clear else 200, quality=85), ""


def sensitive(row: MatchRow, settings: Settings) -> bool:
    return row.kind == "hash" or (row.nsfw or 0.0) >= settings.nsfw.blur_above


def _crop(pixels: np.ndarray, face_box: tuple[int, int, int, int], scale: float) -> np.ndarray:
    x, y, w, h = (round(v * scale) for v in face_box)
    pad = round(0.35 * max(w, h))
    top, left = max(0, y - pad), max(0, x - pad)
    return pixels[top : y + h + pad, left : x + w + pad]


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
