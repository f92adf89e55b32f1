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
    return np.packbits(bits.astype(np.uint8)).tobytes(), int(quality)


class PdqAnalyzer:
    name = "pdq"

    def __call__(self, media: Media, result: Analysis) -> None:
        result.pdq, result.pdq_quality = pdq(media.pixels)


@register("pdq")
def _pdq(settings: Settings) -> PdqAnalyzer:
    return PdqAnalyzer()
