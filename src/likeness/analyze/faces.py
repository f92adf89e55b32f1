"""Face engines (detect -> align -> embed) and the analyser that runs the configured one.

Embeddings of different engines or models never compare, so every face carries both names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis, Face
from likeness.media import Media
from likeness.settings import FaceSettings, Settings


@dataclass(frozen=True)
class EngineFace:
    """A face in the coordinates of the pixels the engine was given."""

    box: tuple[int, int, int, int]
    landmarks: tuple[tuple[int, int], ...]
    det_score: float
    embedding: np.ndarray
    chip: np.ndarray  # the aligned crop the embedding was computed from (RGB, 150x150 for dlib)


@dataclass(frozen=True)
class Detection:
    """A face a detector found, in the coordinates of the pixels it was given. ``box`` (x, y, w, h) is already
    mapped to what dlib's 5-point shape predictor expects (it was trained on HOG boxes); ``landmarks`` are the
    detector's own points, if it has any (MTCNN: eyes, nose, mouth corners)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: tuple[tuple[int, int], ...] = ()


class Detector(Protocol):
    name: str

    def detect(self, pixels: np.ndarray) -> list[Detection]: ...


class FaceEngine(Protocol):
    name: str
    model: str

    def faces(self, pixels: np.ndarray) -> list[EngineFace]: ...


class DlibEngine:
    """dlib's HOG detector, 5-point shape predictor and ResNet embedding (models from face_recognition_models)."""

    name = "dlib"
    model = "dlib_face_recognition_resnet_model_v1"

    def __init__(self, settings: FaceSettings) -> None:
        import dlib
        import face_recognition_models as frm

        self._settings = settings
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._encoder = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self._dlib = dlib

    def faces(self, pixels: np.ndarray) -> list[EngineFace]:
        pixels = np.ascontiguousarray(pixels)  # dlib's bindings refuse strided views (video frames, crops)
        return [self.embed(pixels, box, score) for box, score in self.detect(pixels)]

    def detect(self, pixels: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """Boxes (x, y, w, h) in ``pixels`` coordinates with detection scores; runs on a copy of at most
        ``detect_max_side`` px, upsampled ``upsample`` times (see bench/detection.py for the trade-off)."""
        small, factor = _shrink(pixels, self._settings.detect_max_side)
        rects, scores, _ = self._detector.run(small, self._settings.upsample, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = int(rect.left() / factor), int(rect.top() / factor)
            x1, y1 = int(rect.right() / factor), int(rect.bottom() / factor)
            if min(x1 - x0, y1 - y0) >= self._settings.min_face_px:
                found.append(((x0, y0, x1 - x0, y1 - y0), float(score)))
        return found

    def embed(self, pixels: np.ndarray, box: tuple[int, int, int, int], score: float) -> EngineFace:
        """5-point landmarks, the aligned 150 px chip, and its unit-length 128-d embedding."""
        x, y, w, h = box
        shape = self._shape(pixels, self._dlib.rectangle(x, y, x + w, y + h))
        chip = np.asarray(self._dlib.get_face_chip(pixels, shape, size=150, padding=0.25))
        vector = np.asarray(self._encoder.compute_face_descriptor(chip), dtype=np.float32)
        landmarks = tuple((p.x, p.y) for p in shape.parts())
        return EngineFace(box, landmarks, score, unit(vector), chip)


def _shrink(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    h, w = pixels.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    if factor == 1.0:
        return pixels, 1.0
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR)), factor


def unit(vector: np.ndarray) -> np.ndarray:
    """The vector scaled to length 1, as float32 (cosine similarity is then a dot product)."""
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def face_quality(box: tuple[int, int, int, int], det_score: float) -> float:
    """0..1: larger and more confidently detected faces make better references and evidence."""
    size = min(1.0, min(box[2], box[3]) / 100.0)
    confidence = 1.0 / (1.0 + math.exp(-2.0 * det_score))
    return round(size * confidence, 4)


_ENGINES: dict[str, Callable[[FaceSettings], FaceEngine]] = {"dlib": DlibEngine}


def make_engine(settings: FaceSettings) -> FaceEngine:
    try:
        return _ENGINES[settings.engine](settings)
    except KeyError:
        raise ValueError(f"unknown face engine {settings.engine!r}; available: {sorted(_ENGINES)}") from None


def to_face(found: EngineFace, scale: float, engine: FaceEngine, frame: int = 0) -> Face:
    """Map an engine face from analysis pixels back to the original image."""
    x, y, w, h = (round(v / scale) for v in found.box)
    landmarks = tuple((round(px / scale), round(py / scale)) for px, py in found.landmarks)
    return Face(
        (x, y, w, h),
        landmarks,
        found.det_score,
        face_quality((x, y, w, h), found.det_score),
        found.embedding,
        engine.name,
        engine.model,
        frame,
    )


class FaceAnalyzer:
    """Faces of every frame; in a video the same person is reported once, from the frame where the face is best."""

    name = "faces"

    def __init__(self, engine: FaceEngine, same_person: float) -> None:
        self.engine = engine
        self.same_person = same_person

    def __call__(self, media: Media, result: Analysis) -> None:
        faces = [
            to_face(found, media.scale, self.engine, frame.index)
            for frame in media.each_frame()
            for found in self.engine.faces(frame.pixels)
        ]
        result.faces = one_per_person(faces, self.same_person) if len(media.each_frame()) > 1 else faces


def one_per_person(faces: list[Face], same_person: float) -> list[Face]:
    """Best face first; a face as similar as ``same_person`` to one already kept is the same person again."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.quality, reverse=True):
        if all(float(face.embedding @ other.embedding) < same_person for other in kept):
            kept.append(face)
    return sorted(kept, key=lambda f: (f.frame, f.box))


@register("faces")
def _faces(settings: Settings) -> FaceAnalyzer:
    return FaceAnalyzer(make_engine(settings.faces), settings.faces.tier_medium)
