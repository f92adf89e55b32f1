"""Face engines (detect -> align -> embed) and the analyser that runs the configured one.

Embeddings of different engines or models never compare, so every face carries both names. Both engines here
align with dlib's 5-point shape predictor and embed with dlib's face-recognition ResNet: ``dlib`` runs that network
in dlib-bin, ``onnx`` runs the same weights rebuilt as an ONNX graph (analyze/dlib_onnx.py) on ONNX Runtime, about
20x faster, with the same vectors (within 1e-6), hence the same model name. Detection and alignment (per picture)
and embedding (``embed(chips)``, in batches) are separate steps, so the pipeline can put the faces of many frames
and many files through the network together.

A still picture in which no face is found upright is tried again turned 90, 270 and 180 degrees (only then: a
copy whose EXIF orientation tag was lost shows faces on their side); the faces found are mapped back to the
picture's own coordinates and the analysis says which turn found them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from likeness.analyze.plugins import register
from likeness.analyze.types import Analysis, Face
from likeness.errors import ConfigurationError
from likeness.media import Media
from likeness.settings import FaceSettings, RuntimeSettings, Settings

EMBEDDING_DIM = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# Quarter turns counterclockwise (np.rot90's k) tried on a still with no upright face: sideways first (the usual
# lost EXIF tag of a phone photo), upside down last; and how the analysis names each.
TURNS = (1, 3, 2)
TURN_NAMES = {1: "90 degrees counterclockwise", 2: "180 degrees", 3: "90 degrees clockwise"}


@dataclass(frozen=True)
class Detection:
    """A face a detector found, in the coordinates of the pixels it was given. ``box`` (x, y, w, h) is already
    mapped to what dlib's 5-point shape predictor expects (it was trained on HOG boxes); ``landmarks`` are the
    detector's own points, if it has any (MTCNN: eyes, nose, mouth corners)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Aligned:
    """A face found and aligned, not yet embedded, in the coordinates of the pixels the engine was given."""

    box: tuple[int, int, int, int]
    landmarks: tuple[tuple[int, int], ...]  # dlib's 5 points: eye corners and the base of the nose
    det_score: float
    chip: np.ndarray  # the aligned crop the embedding is computed from (RGB uint8, 150x150)

    def embedded(self, vector: np.ndarray) -> EngineFace:
        return EngineFace(self.box, self.landmarks, self.det_score, vector, self.chip)


@dataclass(frozen=True)
class EngineFace:
    """A face in the coordinates of the pixels the engine was given."""

    box: tuple[int, int, int, int]
    landmarks: tuple[tuple[int, int], ...]
    det_score: float
    embedding: np.ndarray  # unit length, float32
    chip: np.ndarray  # the aligned crop the embedding was computed from (RGB, 150x150)


class Detector(Protocol):
    name: str
    # A face found only in a turned copy must score at least this: turning a picture three more ways triples the
    # chances of a false box, and a real face turned upright scores as high as any (bench/detection.py).
    confident: float

    def detect(self, pixels: np.ndarray) -> list[Detection]: ...


class FaceEngine(Protocol):
    name: str
    model: str
    detector: Detector

    def align(self, pixels: np.ndarray) -> list[Aligned]: ...

    def aligned(self, pixels: np.ndarray, detections: list[Detection]) -> list[Aligned]: ...

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray: ...

    def faces(self, pixels: np.ndarray) -> list[EngineFace]: ...


class HogDetector:
    """dlib's HOG frontal-face detector, on a copy of at most ``detect_max_side`` px upsampled ``upsample`` times
    (bench/detection.py has the trade-off)."""

    name = "hog"
    confident = 0.5  # an SVM margin; clear frontal faces score 1-2

    def __init__(self, settings: FaceSettings) -> None:
        import dlib

        self._settings = settings
        self._detector = dlib.get_frontal_face_detector()

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        small, factor = _shrink(np.ascontiguousarray(pixels), self._settings.detect_max_side)
        rects, scores, _ = self._detector.run(small, self._settings.upsample, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            x0, y0 = int(rect.left() / factor), int(rect.top() / factor)
            x1, y1 = int(rect.right() / factor), int(rect.bottom() / factor)
            if min(x1 - x0, y1 - y0) >= self._settings.min_face_px:
                found.append(Detection((x0, y0, x1 - x0, y1 - y0), float(score)))
        return found


class _Sp5Engine:
    """What both engines share: a detector, dlib's 5-point shape predictor and ``get_face_chip`` (150 px, padding
    0.25, as the network was trained). Subclasses say how a batch of chips is embedded."""

    name = ""
    model = "dlib_face_recognition_resnet_model_v1"

    def __init__(self, settings: FaceSettings, detector: Detector | None = None) -> None:
        import dlib
        import face_recognition_models as frm

        self.detector = detector or HogDetector(settings)
        self.batch_size = max(1, settings.batch_size)
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._dlib = dlib

    def align(self, pixels: np.ndarray) -> list[Aligned]:
        pixels = np.ascontiguousarray(pixels)  # dlib's bindings refuse strided views (video frames, crops, turns)
        return self.aligned(pixels, self.detector.detect(pixels))

    def aligned(self, pixels: np.ndarray, detections: list[Detection]) -> list[Aligned]:
        """Landmarks and chips of faces already detected (``pixels`` C-contiguous)."""
        return [self._aligned(pixels, found) for found in detections]

    def _aligned(self, pixels: np.ndarray, found: Detection) -> Aligned:
        x, y, w, h = found.box
        shape = self._shape(pixels, self._dlib.rectangle(x, y, x + w, y + h))
        chip = np.asarray(self._dlib.get_face_chip(pixels, shape, size=CHIP_SIZE, padding=CHIP_PADDING))
        return Aligned(found.box, tuple((p.x, p.y) for p in shape.parts()), found.score, chip)

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(len(chips), 128) unit-length float32 rows, ``batch_size`` chips per pass through the network."""
        parts = [self._vectors(chips[i : i + self.batch_size]) for i in range(0, len(chips), self.batch_size)]
        return unit_rows(np.concatenate(parts)) if parts else np.zeros((0, EMBEDDING_DIM), np.float32)

    def _vectors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def faces(self, pixels: np.ndarray) -> list[EngineFace]:
        """Detect, align and embed in one call (enrollment, benchmarks)."""
        aligned = self.align(pixels)
        vectors = self.embed([a.chip for a in aligned])
        return [a.embedded(v) for a, v in zip(aligned, vectors, strict=True)]


class DlibEngine(_Sp5Engine):
    """The network in dlib-bin (built without BLAS here: ~80 ms a face on one core)."""

    name = "dlib"

    def __init__(self, settings: FaceSettings, detector: Detector | None = None) -> None:
        super().__init__(settings, detector)
        import face_recognition_models as frm

        self._encoder = self._dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def _vectors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        found = self._encoder.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        return np.array([np.asarray(v) for v in found], dtype=np.float32)


class OnnxEngine(_Sp5Engine):
    """The same network on ONNX Runtime: the graph is built from the .dat file on first use and cached under
    ``cache_dir``; threads and device come from the runtime settings, as for every network."""

    name = "onnx"

    def __init__(
        self, settings: FaceSettings, runtime: RuntimeSettings, cache_dir: Path, detector: Detector | None = None
    ) -> None:
        super().__init__(settings, detector)
        from likeness.analyze import dlib_onnx
        from likeness.analyze import runtime as ort

        self._session = ort.session(dlib_onnx.load_graph(cache_dir), runtime.threads, runtime.device)

    def _vectors(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.stack([np.asarray(c, dtype=np.uint8) for c in chips])
        return np.asarray(self._session.run(["descriptors"], {"chips": batch})[0], dtype=np.float32)


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


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return (vectors / norms).astype(np.float32)


def face_quality(box: tuple[int, int, int, int], det_score: float) -> float:
    """0..1: larger and more confidently detected faces make better references and evidence."""
    size = min(1.0, min(box[2], box[3]) / 100.0)
    confidence = 1.0 / (1.0 + math.exp(-2.0 * det_score))
    return round(size * confidence, 4)


# -- choosing by name ---------------------------------------------------------------------------------------------


def _mtcnn(settings: Settings) -> Detector:
    from likeness.analyze.mtcnn import MtcnnDetector  # by name: it imports this module

    return MtcnnDetector(
        settings.faces, settings.home / "models", threads=settings.runtime.threads, device=settings.runtime.device
    )


_DETECTORS: dict[str, Callable[[Settings], Detector]] = {"hog": lambda s: HogDetector(s.faces), "mtcnn": _mtcnn}
_ENGINES: dict[str, Callable[[Settings, Detector], FaceEngine]] = {
    "dlib": lambda s, d: DlibEngine(s.faces, d),
    "onnx": lambda s, d: OnnxEngine(s.faces, s.runtime, s.home / "models", d),
}


def check_names(settings: Settings) -> None:
    """Unknown engine, detector or device names are a configuration error; checked without loading any model."""
    from likeness.analyze.runtime import DEVICES

    for kind, name, known in (
        ("face engine", settings.faces.engine, _ENGINES),
        ("face detector", settings.faces.detector, _DETECTORS),
        ("device", settings.runtime.device, DEVICES),
    ):
        if name not in known:
            raise ConfigurationError(f"unknown {kind} {name!r}; one of {', '.join(sorted(known))}")


def make_engine(settings: Settings) -> FaceEngine:
    """The configured engine with its detector; the models are loaded here (about a second)."""
    check_names(settings)
    return _ENGINES[settings.faces.engine](settings, _DETECTORS[settings.faces.detector](settings))


# -- any orientation ----------------------------------------------------------------------------------------------


def _unturn(x: float, y: float, turns: int, width: int, height: int) -> tuple[float, float]:
    """A point of ``np.rot90(picture, turns)`` in the picture's own coordinates (continuous: pixel edges)."""
    if turns == 1:
        return width - y, x
    if turns == 2:
        return width - x, height - y
    if turns == 3:
        return y, height - x
    return x, y


def unturned(face: Aligned, turns: int, width: int, height: int) -> Aligned:
    """``face``, found in the picture turned ``turns`` quarter turns counterclockwise, in the upright picture."""
    x, y, w, h = face.box
    (ax, ay), (bx, by) = (_unturn(px, py, turns, width, height) for px, py in ((x, y), (x + w, y + h)))
    box = (round(min(ax, bx)), round(min(ay, by)), round(abs(bx - ax)), round(abs(by - ay)))
    centres = (_unturn(px + 0.5, py + 0.5, turns, width, height) for px, py in face.landmarks)
    landmarks = tuple((round(px - 0.5), round(py - 0.5)) for px, py in centres)
    return Aligned(box, landmarks, face.det_score, face.chip)


def align_any_orientation(engine: FaceEngine, pixels: np.ndarray) -> tuple[list[Aligned], int]:
    """Every face, aligned upright whatever its orientation, in the upright picture's coordinates; and the turn
    that found them (0: all upright, or none found).

    A detector that can tell a face's orientation (MTCNN's ``turns``) sends each turned face to the copy of the
    picture where it is upright. When no face is found at all, the other three quarter turns are tried, keeping
    only confident faces (three more looks at a picture are three more chances of a false box), and the turn whose
    best face scores highest wins (a face still a half turn off scores less than upright)."""
    pixels = np.ascontiguousarray(pixels)
    detections = engine.detector.detect(pixels)
    judge = getattr(engine.detector, "turns", None)
    by_turn: dict[int, list[Detection]] = {}
    for detection in detections:
        by_turn.setdefault(judge(pixels, detection) if judge else 0, []).append(detection)
    upright = by_turn.pop(0, [])
    faces = engine.aligned(pixels, upright)
    for turns, wanted in by_turn.items():
        faces += _turned_like(engine, pixels, turns, wanted)
    if faces or detections:
        return faces, (0 if upright or not by_turn else min(by_turn))
    turned = {
        k: [f for f in _turned_faces(engine, pixels, k) if f.det_score >= engine.detector.confident] for k in TURNS
    }
    turns = max(TURNS, key=lambda k: max((f.det_score for f in turned[k]), default=-1e9))  # a quarter off scores less
    return (turned[turns], turns) if turned[turns] else ([], 0)


def _turned_like(engine: FaceEngine, pixels: np.ndarray, turns: int, wanted: list[Detection]) -> list[Aligned]:
    """The faces at ``wanted``'s places, found in the copy turned ``turns`` or the half turn beyond it, whichever
    scores higher (a face on its side may be judged the wrong way up; the detector's score then tells)."""
    best: list[Aligned] = []
    for candidate in {turns, (turns + 2) % 4} - {0}:
        found = [f for f in _turned_faces(engine, pixels, candidate) if any(_overlap(f.box, d.box) for d in wanted)]
        if max((f.det_score for f in found), default=-1e9) > max((f.det_score for f in best), default=-1e9):
            best = found
    return best


def _turned_faces(engine: FaceEngine, pixels: np.ndarray, turns: int) -> list[Aligned]:
    """The faces of the picture turned ``turns`` quarter turns, mapped back to the upright picture."""
    height, width = pixels.shape[:2]
    return [unturned(f, turns, width, height) for f in engine.align(np.rot90(pixels, turns))]


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes cover each other for at least a third of the smaller one."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return w > 0 and h > 0 and w * h >= min(a[2] * a[3], b[2] * b[3]) / 3


# -- the analyser -------------------------------------------------------------------------------------------------


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


@dataclass
class PendingFaces:
    """One file's faces between alignment and embedding: (frame index, face in analysis pixels)."""

    found: list[tuple[int, Aligned]] = field(default_factory=list)

    @property
    def chips(self) -> list[np.ndarray]:
        return [face.chip for _, face in self.found]


class FaceAnalyzer:
    """Faces of every frame; in a video the same person is reported once, from the frame where the face is best.

    Two steps, so that a batch of files shares the network: ``align`` (per file) and ``finish`` (per file, given
    the embeddings of its chips, from ``embed`` over any number of files)."""

    name = "faces"

    def __init__(self, engine: FaceEngine, same_person: float, rotations: bool = True) -> None:
        self.engine = engine
        self.same_person = same_person
        self.rotations = rotations

    def __call__(self, media: Media, result: Analysis) -> None:
        pending = self.align(media, result)
        self.finish(media, result, pending, self.embed(pending.chips))

    def align(self, media: Media, result: Analysis) -> PendingFaces:
        frames = media.each_frame()
        if len(frames) > 1 or not self.rotations:
            return PendingFaces([(f.index, face) for f in frames for face in self.engine.align(f.pixels)])
        found, turns = align_any_orientation(self.engine, frames[0].pixels)
        if turns:
            result.warnings.append(f"faces found with the picture turned {TURN_NAMES[turns]}")
        return PendingFaces([(frames[0].index, face) for face in found])

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        return self.engine.embed(chips)

    def finish(self, media: Media, result: Analysis, pending: PendingFaces, vectors: np.ndarray) -> None:
        faces = [
            to_face(face.embedded(vector), media.scale, self.engine, frame)
            for (frame, face), vector in zip(pending.found, vectors, strict=True)
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
    engine = make_engine(settings)
    return FaceAnalyzer(engine, settings.faces.tiers(engine.model).medium, settings.faces.rotations)
