"""NSFW score: the highest NudeNet confidence among the classes that mean exposed intimate parts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis
from likeness.media import Media
from likeness.settings import NsfwSettings, Settings

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

    def __init__(self, threads: int = 0) -> None:
        import nudenet
        import onnxruntime
        from nudenet import NudeDetector

        self._detector = NudeDetector()
        if threads:
            # NudeDetector builds a session with one thread per core; in a pool of one process per core
            # those threads fight each other, so the session is rebuilt with the thread count asked for.
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = threads
            model = Path(nudenet.__file__).with_name("320n.onnx")
            providers = [p for p in onnxruntime.get_available_providers() if p != "AzureExecutionProvider"]
            self._detector.onnx_session = onnxruntime.InferenceSession(str(model), options, providers=providers)

    def score(self, pixels: np.ndarray) -> float:
        # NudeNet converts RGBA->BGR itself and then swaps back to RGB for the network.
        rgba = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])
        detections = self._detector.detect(rgba)
        return max((float(d["score"]) for d in detections if d["class"] in _EXPLICIT), default=0.0)


_SCORERS: dict[str, Callable[[int], NsfwScorer]] = {"nudenet": NudeNetScorer}


class NsfwAnalyzer:
    name = "nsfw"

    def __init__(self, settings: NsfwSettings) -> None:
        if settings.engine not in _SCORERS:
            raise ValueError(f"unknown NSFW engine {settings.engine!r}; available: {sorted(_SCORERS)}")
        self._scorer = _SCORERS[settings.engine](settings.threads)
        self._only_with_faces = settings.only_with_faces

    def __call__(self, media: Media, result: Analysis) -> None:
        """The highest score over the frames (only those with a face, by default)."""
        with_faces = {face.frame for face in result.faces}
        frames = [f for f in media.each_frame() if f.index in with_faces or not self._only_with_faces]
        if frames:
            result.nsfw = round(max(self._scorer.score(f.pixels) for f in frames), 4)


@register("nsfw")
def _nsfw(settings: Settings) -> NsfwAnalyzer:
    return NsfwAnalyzer(settings.nsfw)
