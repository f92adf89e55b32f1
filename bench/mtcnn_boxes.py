"""Fits the MTCNN -> HOG box mapping in analyze/mtcnn.py (HOG_SIDE, HOG_DX, HOG_DY) and checks what it buys.

dlib's 5-point shape predictor was trained on the boxes of dlib's HOG detector; given another detector's box it
puts the landmarks elsewhere, the aligned chip moves, and the embedding drifts away from the one stored for the
same face today. MTCNN's boxes are taller and sit higher on the face, so each one is mapped to a square of side
HOG_SIDE x sqrt(w h) whose centre is moved by (HOG_DX, HOG_DY) x sqrt(w h): a scale and an offset, fitted by least
squares on the relative errors (every face weighs the same, whatever its size) over the faces both detectors find
in the package pictures and, when present, ../shared/eval-data/faces.

Then, on those faces, the distance of the 128-d descriptor computed from each box to today's (from the HOG box):
the raw MTCNN box, the box mapped with the constants now in the code, and the box mapped with the fitted ones.

    python -m bench.mtcnn_boxes [--every N]   # N: use every N-th eval picture (default 1)
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from bench.common import EVAL
from likeness.analyze import mtcnn
from likeness.analyze.faces import Detection, HogDetector, OnnxEngine
from likeness.media import decode
from likeness.services.corpus import GRACE_HOPPER
from likeness.settings import FaceSettings, MediaLimits, RuntimeSettings

Pair = tuple[np.ndarray, np.ndarray, np.ndarray]  # pixels, HOG box (x, y, w, h), MTCNN box (x1, y1, x2, y2)


def pictures(every: int) -> Iterator[np.ndarray]:
    """The package pictures with faces, then the eval-data face pictures (as analysis sees them) when present."""
    yield data.astronaut()
    yield np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))
    yield np.stack([data.camera()] * 3, axis=-1)
    paths = sorted((EVAL / "faces").glob("*/*.*")) if (EVAL / "faces").is_dir() else []
    for path in paths[::every]:
        yield decode(path.read_bytes(), MediaLimits()).pixels


def pairs(hog: HogDetector, detector: mtcnn.MtcnnDetector, pixels: np.ndarray) -> Iterator[Pair]:
    """Faces both detectors found: each HOG box with the MTCNN box that overlaps it best (IoU >= 0.3)."""
    pixels = np.ascontiguousarray(pixels if pixels.ndim == 3 else np.stack([pixels] * 3, axis=-1))
    found = detector.cascade(Image.fromarray(pixels), max(mtcnn.MIN_WINDOW, FaceSettings().min_face_px))
    for x, y, w, h in (d.box for d in hog.detect(pixels)):
        hog_corners = np.array([x, y, x + w, y + h], dtype=float)
        overlaps = [overlap(hog_corners, box) for box in found.boxes]
        if overlaps and max(overlaps) >= 0.3:
            yield pixels, np.array([x, y, w, h], dtype=float), found.boxes[int(np.argmax(overlaps))]


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    wh = np.maximum(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0)
    inter = wh[0] * wh[1]
    return float(inter / (np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]) - inter))


def fit(found: list[Pair]) -> tuple[float, float, float, np.ndarray]:
    """(side, dx, dy) minimising the squared relative errors, and the per-face residuals (side, dx, dy)."""
    hog = np.array([p[1] for p in found])
    box = np.array([p[2] for p in found])
    root = np.sqrt(np.prod(box[:, 2:] - box[:, :2], axis=1))
    side = np.sqrt(hog[:, 2] * hog[:, 3]) / root
    centre = ((hog[:, :2] + hog[:, 2:] / 2) - (box[:, :2] + box[:, 2:]) / 2) / root[:, None]
    ratios = np.column_stack([side, centre])
    fitted = ratios.mean(axis=0)  # the least-squares constant of each ratio
    return float(fitted[0]), float(fitted[1]), float(fitted[2]), ratios - fitted


def mapped(box: np.ndarray, side: float, dx: float, dy: float) -> tuple[int, int, int, int]:
    saved = mtcnn.HOG_SIDE, mtcnn.HOG_DX, mtcnn.HOG_DY
    mtcnn.HOG_SIDE, mtcnn.HOG_DX, mtcnn.HOG_DY = side, dx, dy
    try:
        return mtcnn.hog_box(box)
    finally:
        mtcnn.HOG_SIDE, mtcnn.HOG_DX, mtcnn.HOG_DY = saved


def drift(engine: OnnxEngine, found: list[Pair], boxes: dict[str, list[tuple[int, int, int, int]]]) -> dict[str, str]:
    """Median and 90th-percentile L2 distance of each box's descriptor to today's (the HOG box's)."""
    today = [descriptor(engine, p, tuple(int(v) for v in b)) for p, b, _ in found]
    result = {}
    for label, chosen in boxes.items():
        dist = [
            float(np.linalg.norm(descriptor(engine, p, box) - t))
            for (p, _, _), box, t in zip(found, chosen, today, strict=True)
        ]
        result[label] = f"median {np.median(dist):.4f}, p90 {np.percentile(dist, 90):.4f}, max {max(dist):.4f}"
    return result


def descriptor(engine: OnnxEngine, pixels: np.ndarray, box: tuple[int, ...]) -> np.ndarray:
    """The 128-d vector of the face in ``box``, aligned by dlib's 5-point shape predictor from that box."""
    x, y, w, h = box
    aligned = engine.aligned(pixels, [Detection((x, y, w, h), 0.0)])
    return engine.embed([aligned[0].chip])[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=1)
    args = parser.parse_args()
    hog = HogDetector(FaceSettings())
    with tempfile.TemporaryDirectory() as cache:
        detector = mtcnn.MtcnnDetector(FaceSettings(), Path(cache), threads=1)
        engine = OnnxEngine(FaceSettings(), RuntimeSettings(threads=1), Path(cache), hog)
        found = [pair for pixels in pictures(args.every) for pair in pairs(hog, detector, pixels)]
    side, dx, dy, residuals = fit(found)
    print(f"{len(found)} faces found by both detectors")
    print(f"fitted: HOG_SIDE, HOG_DX, HOG_DY = {side:.3f}, {dx:.3f}, {dy:.3f}")
    print("residual std (side, dx, dy):", np.round(residuals.std(axis=0), 3).tolist())
    raw = [(round(b[0]), round(b[1]), round(b[2] - b[0]), round(b[3] - b[1])) for _, _, b in found]
    boxes = {
        "raw MTCNN box": raw,
        "mapped (constants in the code)": [mtcnn.hog_box(b) for _, _, b in found],
        "mapped (fitted now)": [mapped(b, side, dx, dy) for _, _, b in found],
    }
    for label, text in drift(engine, found, boxes).items():
        print(f"descriptor distance to today's, {label}: {text}")


if __name__ == "__main__":
    main()
