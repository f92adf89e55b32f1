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
    """NudeNet's detector (its 320n.onnx weights) with NudeNet's own pre- and post-processing, vectorised: its
    ``detect`` loops in Python over the 2,100 candidate rows, which cost as much as the network on small pictures.
    ``detections`` gives what ``NudeDetector.detect`` gives (tests/test_analyze.py holds them equal)."""

    name = "nudenet"
    side = 320  # the network's input: the picture padded to a square (bottom, right), then resized
    min_score, nms_score, nms_iou = 0.2, 0.25, 0.45  # NudeNet's own thresholds

    def __init__(self, runtime: RuntimeSettings) -> None:
        import nudenet

        from likeness.analyze.runtime import session

        self.session = session(Path(nudenet.__file__).with_name("320n.onnx"), runtime.threads, runtime.device)
        self._labels: list[str] = nudenet.nudenet.__dict__["__labels"]

    def score(self, pixels: np.ndarray) -> float:
        return max((score for label, score, _ in self.detections(pixels) if label in _EXPLICIT), default=0.0)

    def detections(self, pixels: np.ndarray) -> list[tuple[str, float, list[int]]]:
        """(class, score, [x, y, w, h]) in ``pixels`` coordinates, after NudeNet's class-agnostic NMS."""
        import cv2

        height, width = pixels.shape[:2]
        side = max(height, width)
        square = cv2.copyMakeBorder(pixels, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT)
        blob = cv2.dnn.blobFromImage(square, 1 / 255.0, (self.side, self.side), (0, 0, 0), swapRB=False, crop=False)
        rows = self.session.run(None, {self.session.get_inputs()[0].name: blob})[0][0].T
        classes = rows[:, 4:]
        scores = classes.max(axis=1)
        keep = np.flatnonzero(scores >= self.min_score)
        if not len(keep):
            return []
        boxes = _boxes(rows[keep, :4].astype(np.float64), side / self.side, width, height)
        kept = cv2.dnn.NMSBoxes(boxes.tolist(), scores[keep].tolist(), self.nms_score, self.nms_iou)
        labels = classes[keep].argmax(axis=1)
        return [(self._labels[labels[i]], float(scores[keep][i]), [int(v) for v in boxes[i]]) for i in kept]


def _boxes(centres: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """Centre-size boxes of the network's square to clipped corner-size boxes of the picture, as NudeNet does."""
    x, y = (centres[:, 0] - centres[:, 2] / 2) * scale, (centres[:, 1] - centres[:, 3] / 2) * scale
    x, y = np.clip(x, 0, width), np.clip(y, 0, height)
    w, h = np.minimum(centres[:, 2] * scale, width - x), np.minimum(centres[:, 3] * scale, height - y)
    return np.stack([x, y, w, h], axis=1)


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
