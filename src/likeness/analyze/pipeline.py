"""``analyze(bytes) -> Analysis``: decode with limits, then the configured analysers in order."""

from __future__ import annotations

from likeness.analyze import faces, hashing, nsfw, prefilter, provenance  # noqa: F401  (registers plugins)
from likeness.analyze.plugins import Analyzer, build
from likeness.analyze.types import Analysis
from likeness.media import decode
from likeness.settings import Settings


class Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.analyzers: list[Analyzer] = build(settings)

    def analyze(self, data: bytes) -> Analysis:
        """Raises a ``MediaError`` subclass when the bytes cannot be decoded within the limits."""
        media = decode(data, self.settings.media)
        result = Analysis(
            media.width, media.height, media.format, media.frame_count, media.duration_s, warnings=list(media.warnings)
        )
        for analyzer in self.analyzers:
            if result.skipped:
                break
            analyzer(media, result)
        return result
