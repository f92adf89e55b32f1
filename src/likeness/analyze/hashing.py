"""Cryptographic and perceptual hashes."""

from __future__ import annotations

import hashlib

import numpy as np
import pdqhash

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis
from likeness.media import Media
from likeness.settings import Settings

PDQ_ALGORITHM = "pdq/1.0"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pdq(pixels: np.ndarray) -> tuple[bytes, int]:
    """PDQ hash as 32 bytes, first bit most significant (ThreatExchange's hex order), and its quality."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return _pack(bits), int(quality)


def pdq_dihedral(pixels: np.ndarray) -> tuple[list[bytes], int]:
    """The PDQ hashes of the picture in its 8 orientations (rotations and mirrors); the first is ``pdq``'s."""
    variants, quality = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
    return [_pack(np.asarray(v)) for v in variants], int(quality)


def trim_border(pixels: np.ndarray, tolerance: int = 16, least: float = 0.02) -> np.ndarray | None:
    """The picture without a uniform border (a frame, letterboxing), or None when there is none to remove.

    A border is what surrounds the first and last rows and columns that differ from the top-left corner's colour
    by more than ``tolerance``; it must take at least ``least`` of a side, and leave at least half of each side.
    """
    h, w = pixels.shape[:2]
    differs = np.abs(pixels.astype(np.int16) - pixels[0, 0].astype(np.int16)).max(axis=2) > tolerance
    rows, cols = np.flatnonzero(differs.any(axis=1)), np.flatnonzero(differs.any(axis=0))
    if not len(rows):
        return None
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if bottom - top > h * (1 - least) and right - left > w * (1 - least):
        return None
    if bottom - top < h / 2 or right - left < w / 2:
        return None
    return pixels[top:bottom, left:right]


def scan_hashes(pixels: np.ndarray, dihedral: bool = True) -> tuple[list[bytes], int]:
    """Every PDQ hash a scanned picture is looked up by, its own first, and its quality."""
    if dihedral:
        variants, quality = pdq_dihedral(pixels)
    else:
        digest, quality = pdq(pixels)
        variants = [digest]
    return variants + border_hashes(pixels, dihedral), quality


def border_hashes(pixels: np.ndarray, dihedral: bool = False) -> list[bytes]:
    """The hashes of the picture without its uniform border, if it has one (PDQ does not survive borders)."""
    trimmed = trim_border(pixels)
    if trimmed is None:
        return []
    trimmed = np.ascontiguousarray(trimmed)
    return pdq_dihedral(trimmed)[0] if dihedral else [pdq(trimmed)[0]]


def _pack(bits: np.ndarray) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


class PdqAnalyzer:
    """With ``dihedral``, also the hashes of the 7 other orientations, so rotated or mirrored copies match; when
    the picture has a uniform border, also the hashes of the picture without it (PDQ does not survive borders)."""

    name = "pdq"

    def __init__(self, dihedral: bool, min_quality: int) -> None:
        self.dihedral = dihedral
        self.min_quality = min_quality

    def __call__(self, media: Media, result: Analysis) -> None:
        variants, result.pdq_quality = scan_hashes(media.pixels, self.dihedral)
        result.pdq, result.pdq_variants = variants[0], variants[1:]
        for frame in media.each_frame()[1:]:  # later frames of a video: as they are, no orientations
            own, quality = (
                (_pack(frame.pdq_bits), frame.pdq_quality) if frame.pdq_bits is not None else pdq(frame.pixels)
            )
            if quality >= self.min_quality:
                result.frame_pdqs += [(frame.index, h) for h in (own, *border_hashes(frame.pixels))]


@register("pdq")
def _pdq(settings: Settings) -> PdqAnalyzer:
    return PdqAnalyzer(settings.hashes.dihedral, settings.hashes.pdq_min_quality)
