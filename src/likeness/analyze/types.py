"""What analysis produces. Plain data, picklable, so it crosses the process-pool boundary cheaply."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in original-image pixels
    landmarks: tuple[tuple[int, int], ...]
    det_score: float
    quality: float
    embedding: np.ndarray  # L2-normalised float32
    engine: str
    model: str
    frame: int = 0  # videos and animations: the frame the face was best seen in


@dataclass
class Analysis:
    width: int
    height: int
    format: str
    frame_count: int = 1
    duration_s: float | None = None
    pdq: bytes | None = None
    pdq_quality: int | None = None
    pdq_variants: list[bytes] = field(default_factory=list)  # the other 7 orientations, when computed
    # later sampled frames of a video or animation: (frame, hash), the frame's own hash first, then its
    # border-trimmed hash if it has a border; frames under the minimum PDQ quality are left out
    frame_pdqs: list[tuple[int, bytes]] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)
    nsfw: float | None = None
    provenance: dict[str, str] = field(default_factory=dict)
    skipped: str | None = None  # set by a pre-filter; later analysers then do nothing
    warnings: list[str] = field(default_factory=list)

    def own_frame_pdqs(self) -> dict[int, bytes]:
        """Each later frame's own hash (its border-trimmed copy left out)."""
        own: dict[int, bytes] = {}
        for frame, digest in self.frame_pdqs:
            own.setdefault(frame, digest)
        return own
