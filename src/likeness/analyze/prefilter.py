"""Cheap checks that spare the expensive analysers: too small to hold a usable face, or blank."""

from __future__ import annotations

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis
from likeness.media import Media
from likeness.settings import Settings


class PreFilter:
    name = "prefilter"

    def __init__(self, min_side: int, blank_std: float) -> None:
        self.min_side = min_side
        self.blank_std = blank_std

    def __call__(self, media: Media, result: Analysis) -> None:
        if min(media.width, media.height) < self.min_side:
            result.skipped = f"too_small: {media.width}x{media.height} is under {self.min_side} px"
            return
        # The standard deviation of a coarse grey copy: a flat or near-flat picture has nothing to find.
        grey = media.pixels[::4, ::4].mean(axis=2)
        if float(grey.std()) < self.blank_std:
            result.skipped = "blank: no detail in the picture"


@register("prefilter")
def _prefilter(settings: Settings) -> PreFilter:
    return PreFilter(settings.scan.min_side_px, settings.scan.blank_std)
