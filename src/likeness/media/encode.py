"""Pixels back to bytes, for the small crops we keep (encrypted reference chips) or show (reports)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg(pixels: np.ndarray, max_side: int | None = None, quality: int = 88) -> bytes:
    img = Image.fromarray(pixels)
    if max_side:
        img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
