"""vPDQ, Meta's video signal: the PDQ hash of about one frame per second, with its frame number and time.

Frames are chosen and hashed as the ``vpdq`` package does (tests/test_vpdq.py compares the two where it is
installed): decoded frame ``n`` (from 0) is kept when ``n % int(seconds_per_hash * frame_rate) == 0``, hashed at
full size from RGB, stamped ``n / frame_rate``. The text format is vpdq's: ``frame,quality,hash,timestamp``.
Two videos are compared by vpdq's brute rule: low-quality features dropped, then the share of one video's
features that have a feature of the other within the distance, in both directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from likeness.analyze.hashing import pdq
from likeness.analyze.pdq_index import as_words, hamming
from likeness.errors import VpdqFormatError
from likeness.media.frames import open_video
from likeness.settings import MediaLimits

VPDQ_ALGORITHM = "vpdq/1.0"


@dataclass(frozen=True)
class Feature:
    frame: int
    quality: int
    digest: bytes
    time_s: float


def hash_video(data: bytes, limits: MediaLimits, seconds_per_hash: float = 1.0) -> list[Feature]:
    features: list[Feature] = []
    with open_video(data, limits) as video:
        if video.frame_rate <= 0:
            raise VpdqFormatError("the video states no frame rate")
        every = max(1, int(seconds_per_hash * video.frame_rate))
        for n, (_, frame) in enumerate(video.decode()):  # TooLarge past max_duration_s, whatever the file declares
            if n >= limits.max_video_frames:
                raise VpdqFormatError(f"over {limits.max_video_frames} frames: too long to protect in one piece")
            if n % every == 0:
                digest, quality = pdq(frame.to_ndarray(format="rgb24"))
                features.append(Feature(n, quality, digest, n / video.frame_rate))
    return features


def dumps(features: Sequence[Feature]) -> str:
    return "".join(f"{f.frame},{f.quality},{f.digest.hex()},{f.time_s:.3f}\n" for f in features)


def loads(text: str) -> list[Feature]:
    features, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            frame, quality, digest, time_s = line.strip().split(",")
            features.append(Feature(int(frame), int(quality), _digest(digest), float(time_s)))
        except ValueError as exc:
            errors.append(f"line {number}: {exc if 'hash' in str(exc) else 'expected frame,quality,hash,timestamp'}")
    if errors:
        raise VpdqFormatError("not a vPDQ hash file; nothing imported:\n" + "\n".join(errors[:20]))
    return features


def _digest(text: str) -> bytes:
    if len(text) != 64:
        raise ValueError(f"a hash is 64 hex digits, got {len(text)}")
    return bytes.fromhex(text)


def usable(features: Sequence[Feature], min_quality: int) -> list[bytes]:
    return [f.digest for f in features if f.quality >= min_quality]


def match_percent(query: Sequence[bytes], target: Sequence[bytes], max_distance: int) -> tuple[float, float]:
    """(share of query hashes with a target hash within the distance, the reverse share), in percent; callers
    drop low-quality features first (``usable``)."""
    if not query or not target:
        return 0.0, 0.0
    qw, tw = as_words(list(query)), as_words(list(target))
    near = np.array([hamming(tw, row) <= max_distance for row in qw])  # query x target
    return float(100.0 * near.any(axis=1).mean()), float(100.0 * near.any(axis=0).mean())
