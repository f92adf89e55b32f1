"""NSFW score: the highest NudeNet confidence among the classes that mean exposed intimate parts. Its session
comes from analyze/runtime.py like every network's: threads and device are set in ``settings.runtime``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis
from likeness.errors import ConfigurationError
from likeness.media import Media
from likeness.settings import NsfwSettings, RuntimeSettings, Settings

_EXPLICIT = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)


class NsfwScorer(Protocol):
    name: str

    def score(self, pixels: np.ndarray) -> float: ...


class NudeNetScorer:
    name = "nudenet"

    def __init__(self, runtime: RuntimeSettings) -> None:
        import nudenet
        from nudenet import NudeDetector

        from likeness.analyze.runtime import session

        # NudeDetector's constructor builds a session on every core with the default providers; ours comes from
        # runtime.session (threads and device from the settings, as for every network), so the constructor is
        # skipped and the attributes its ``detect`` reads are set here.
        model = Path(nudenet.__file__).with_name("320n.onnx")
        self._detector = NudeDetector.__new__(NudeDetector)
        self._detector.onnx_session = session(model, runtime.threads, runtime.device)
        self._detector.input_width = self._detector.input_height = 320
        self._detector.input_name = self._detector.onnx_session.get_inputs()[0].name

    def score(self, pixels: np.ndarray) -> float:
        # NudeNet converts RGBA->BGR itself and then swaps back to RGB for the network.
        rgba = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
        detections = self._detector.detect(rgba)
        return max((float(d["score"]) for d in detections if d["class"] in _EXPLICIT), default=0.0)


_SCORERS: dict[str, Callable[[RuntimeSettings], NsfwScorer]] = {"nudenet": NudeNetScorer}


class NsfwAnalyzer:
    name = "nsfw"

    def __init__(self, settings: NsfwSettings, runtime: RuntimeSettings) -> None:
        check_name(settings)
        self._scorer = _SCORERS[settings.engine](runtime)
        self._only_with_faces = settings.only_with_faces

    def __call__(self, media: Media, result: Analysis) -> None:
        """The highest score over the frames (only those with a face, by default)."""
        with_faces = {face.frame for face in result.faces}
        frames = [f for f in media.each_frame() if f.index in with_faces or not self._only_with_faces]
        if frames:
            result.nsfw = round(max(self._scorer.score(f.pixels) for f in frames), 4)


@register("nsfw")
def _nsfw(settings: Settings) -> NsfwAnalyzer:
    return NsfwAnalyzer(settings.nsfw, settings.runtime)


def check_name(settings: NsfwSettings) -> None:
    if settings.engine not in _SCORERS:
        raise ConfigurationError(f"unknown NSFW engine {settings.engine!r}; one of {', '.join(sorted(_SCORERS))}")
