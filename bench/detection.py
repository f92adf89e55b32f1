"""Detection recall at IoU 0.5 on eval-data/detect/boxes.json (ground truth >= 20 px) for dlib's HOG detector and
for MTCNN (analyze/mtcnn.py) at several working sizes and settings, in the same run, each row's cost a ratio to the
first HOG row. Picks ``faces.upsample`` and the ``faces.mtcnn_*`` defaults. Then what MTCNN's candidate caps do to
crowds, and what its coarse first pass saves and costs on each kind of picture.

    python -m bench.detection [--print-only]   # --print-only: print the section, leave docs/benchmarks.md alone

Both detectors run on one thread (scan workers use one each) and only detect: no landmarks, no embeddings.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import identities, noface, require_eval_data, table, write_section
from likeness.analyze.faces import HogDetector
from likeness.analyze.mtcnn import MtcnnDetector
from likeness.media import decode
from likeness.settings import FaceSettings, MediaLimits

MIN_PX = 20
HOG_CONFIGS = [(450, 0), (450, 1), (800, 0), (800, 1), (1024, 1)]  # (detect_max_side, upsample)
CLASSIC: dict[str, Any] = {"mtcnn_pnet_threshold": 0.6, "mtcnn_rnet_threshold": 0.7, "mtcnn_onet_threshold": 0.7}
FULL: dict[str, Any] = {"mtcnn_coarse_first": False}
MTCNN_CONFIGS: list[tuple[int, str, dict[str, Any]]] = [  # (mtcnn_max_side, label, FaceSettings fields)
    (1024, "thresholds 0.6 / 0.7 / 0.7 (classic), full pyramid", {**CLASSIC, **FULL}),
    (1024, "thresholds 0.7 / 0.7 / 0.8, full pyramid", FULL),
    (1024, "thresholds 0.7 / 0.7 / 0.8, coarse first (**default**)", {}),
    (800, "thresholds 0.7 / 0.7 / 0.8, coarse first", {}),
    (640, "thresholds 0.7 / 0.7 / 0.8, coarse first", {}),
    (1024, "thresholds 0.7 / 0.7 / 0.9, coarse first", {"mtcnn_onet_threshold": 0.9}),
    (1024, "thresholds 0.7 / 0.7 / 0.7, coarse first", {"mtcnn_onet_threshold": 0.7}),
]
CROWD = "wider-val-12_Group_Group_12_Group_Group_12_935.jpg"  # 309 annotated faces
UNCAPPED: dict[str, Any] = {"mtcnn_max_rnet": 10**9, "mtcnn_max_onet": 10**9}

Box = tuple[float, ...]
Images = dict[str, tuple[np.ndarray, float, list]]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax1, bx1) - max(a[0], b[0])), max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def score(found: list[Box], truth: list) -> tuple[int, int, int]:
    """(hits, ground truth >= MIN_PX, false positives) for one picture."""
    big = [t for t in truth if min(t[2], t[3]) >= MIN_PX]
    used: set[int] = set()
    for t in big:
        best = max(range(len(found)), key=lambda i: iou(t, found[i]), default=None)
        if best is not None and best not in used and iou(t, found[best]) >= 0.5:
            used.add(best)
    # detections that match any (even tiny) ground truth are not false positives
    unmatched = [f for i, f in enumerate(found) if i not in used]
    false_pos = sum(1 for f in unmatched if max((iou(f, t) for t in truth), default=0) < 0.5)
    return len(used), len(big), false_pos


def evaluate(detect: Callable[[np.ndarray], list[Box]], images: Images) -> dict:
    hits = total = false_pos = 0
    times = []
    for pixels, scale, truth in images.values():
        started = time.perf_counter()
        boxes = detect(pixels)
        times.append(time.perf_counter() - started)
        h, t, f = score([tuple(v / scale for v in box) for box in boxes], truth)
        hits, total, false_pos = hits + h, total + t, false_pos + f
    return {"recall": hits / total, "hits": hits, "total": total, "fp": false_pos, "times": times}


def hog(side: int, upsample: int) -> Callable[[np.ndarray], list[Box]]:
    detector = HogDetector(FaceSettings(detect_max_side=side, upsample=upsample, min_face_px=1))
    return lambda pixels: [d.box for d in detector.detect(pixels)]


def mtcnn(cache: Path, side: int, fields: dict[str, Any]) -> Callable[[np.ndarray], list[Box]]:
    detector = MtcnnDetector(FaceSettings(mtcnn_max_side=side, **fields), cache, threads=1)
    return lambda pixels: [d.box for d in detector.detect(pixels)]


def recall_rows(groups: dict[str, Images], cache: Path) -> list[list[Any]]:
    runs: list[tuple[str, str, str, Callable[[np.ndarray], list[Box]]]] = [
        ("HOG", f"{side} px", f"upsample {up}", hog(side, up)) for side, up in HOG_CONFIGS
    ]
    runs += [("MTCNN", f"{side} px", label, mtcnn(cache, side, f)) for side, label, f in MTCNN_CONFIGS]
    rows, base = [], 0.0
    for detector, side, label, detect in runs:
        results = {g: evaluate(detect, imgs) for g, imgs in groups.items()}
        times = [t for r in results.values() for t in r["times"]]
        base = base or sum(times)
        cells = [f"{r['recall']:.2f} ({r['hits']}/{r['total']}), {r['fp']} FP" for r in results.values()]
        rows.append([detector, side, label, *cells, f"{sum(times) / base:.2f}x", f"{np.median(times) * 1000:.0f}"])
        print(rows[-1], flush=True)
    return rows


def synthetic_crowd() -> np.ndarray:
    """1,080 faces: scikit-image's LFW subset faces (25 px crops), 40 a row on a 1024 px grey canvas."""
    from skimage import data

    faces = data.lfw_subset()[:100]
    canvas = np.full((27 * 38, 40 * 25 + 24), 128, np.uint8)
    for i in range(27 * 40):
        y, x = divmod(i, 40)
        canvas[y * 38 + 6 : y * 38 + 31, x * 25 + 12 : x * 25 + 37] = (faces[i % len(faces)] * 255).astype(np.uint8)
    return np.stack([canvas] * 3, axis=-1)


def crowd_rows(images: Images, cache: Path) -> list[list[Any]]:
    """The real crowd and a synthetic one, with the default caps on R-net / O-net candidates and without."""
    pixels, scale, truth = images[CROWD]
    rows = []
    settings: list[tuple[str, dict[str, Any]]] = [("default caps", {}), ("no caps", UNCAPPED)]
    for label, fields in settings:
        detect = mtcnn(cache, 1024, fields)
        started = time.perf_counter()
        hits, total, false_pos = score([tuple(v / scale for v in b) for b in detect(pixels)], truth)
        real = time.perf_counter() - started
        started = time.perf_counter()
        synthetic = len(detect(synthetic_crowd()))
        fake = time.perf_counter() - started
        rows.append(
            [label, f"{hits}/{total}, {false_pos} FP, {real * 1000:.0f} ms", f"{synthetic}, {fake * 1000:.0f} ms"]
        )
        print(rows[-1], flush=True)
    return rows


def coarse_rows(kinds: dict[str, list[np.ndarray]], cache: Path) -> list[list[Any]]:
    """ms per picture with the full pyramid and with the coarse first pass, and how many answers differ."""
    full, coarse = mtcnn(cache, 1024, FULL), mtcnn(cache, 1024, {})
    rows = []
    for kind, pictures in kinds.items():
        times, answers = [], []
        for detect in (full, coarse):
            started = time.perf_counter()
            answers.append([detect(p) for p in pictures])
            times.append((time.perf_counter() - started) * 1000 / len(pictures))
        differ = sum(1 for a, b in zip(*answers, strict=True) if a != b)
        rows.append([kind, len(pictures), f"{times[0]:.0f}", f"{times[1]:.0f}", f"{times[1] / times[0]:.2f}x", differ])
        print(rows[-1], flush=True)
    return rows


def load(path: Path, max_side: int = 1024) -> np.ndarray:
    return decode(path.read_bytes(), MediaLimits(analysis_max_side=max_side)).pixels


def main() -> None:
    root = require_eval_data() / "detect"
    boxes = json.loads((root / "boxes.json").read_text())
    images: Images = {}
    for name, truth in boxes.items():
        media = decode((root / name).read_bytes(), MediaLimits(analysis_max_side=2048))
        images[name] = (media.pixels, media.scale, truth)
    groups = {
        "dlib (VOC)": {k: v for k, v in images.items() if k.startswith("dlib-")},
        "WIDER": {k: v for k, v in images.items() if k.startswith("wider-")},
    }
    portraits = [load(p) for paths in identities().values() for p in paths][::4]
    kinds = {
        "portraits (every 4th eval-data face picture)": portraits,
        "no face (eval-data noface)": [load(p) for p in noface()],
        "detect set (VOC and WIDER groups)": [px for px, _, _ in images.values()],
    }
    with tempfile.TemporaryDirectory() as cache:
        rows = recall_rows(groups, Path(cache))
        crowd = crowd_rows(images, Path(cache))
        coarse = coarse_rows(kinds, Path(cache))
    body = section(rows, crowd, coarse)
    if "--print-only" in sys.argv:
        print(body)
    else:
        write_section("detection", "Face detection (dlib HOG and MTCNN)", body)


def section(rows: list[list[Any]], crowd: list[list[Any]], coarse: list[list[Any]]) -> str:
    header = ["detector", "detect size", "settings", "dlib VOC images (43 faces)", "WIDER images", "cost", "median ms"]
    return f"""
Recall at IoU >= 0.5 against `detect/boxes.json`, counting only ground-truth boxes of at least {MIN_PX} px on the
shorter side (WIDER has many smaller ones); detections that overlap any ground-truth box, however small, are not
counted as false positives. The picture is downscaled so its longer side is at most the given size (HOG:
`faces.detect_max_side`, MTCNN: `faces.mtcnn_max_side`), then the detector runs: HOG with the given upsampling,
MTCNN with the given P-net / R-net / O-net thresholds, its pyramid starting at `faces.min_face_px` (20) picture
pixels. MTCNN's box is the one it returns, mapped onto where HOG would put it (bench/mtcnn_boxes.py). Cost is total
detection time relative to the first row, same run, one thread (the 309-face crowd weighs most in MTCNN's); median ms
is per picture.

{table(header, rows)}

Crowds (MTCNN defaults, 1024 px): R-net sees at most `faces.mtcnn_max_rnet` candidates and O-net
`faces.mtcnn_max_onet`, the best-scoring ones; P-net's cost is bounded by the working size.

{table(["caps", f"WIDER crowd ({CROWD[10:40]}...): faces >= 20 px found", "synthetic crowd of 1,080 faces"], crowd)}

The coarse first pass (`faces.mtcnn_coarse_first`) leaves out the two finest pyramid levels; it stands alone when
every face it finds is at least `faces.mtcnn_coarse_enough` (2) times the smallest it can see, otherwise the full
pyramid runs, reusing every network answer already computed. ms per picture, full pyramid vs coarse first:

{table(["pictures", "n", "full ms", "coarse first ms", "ratio", "answers that differ"], coarse)}

Defaults chosen: HOG `faces.detect_max_side = 800`, `faces.upsample = 1` (see docs/calibration.md for why); MTCNN
`faces.mtcnn_max_side = 1024`, thresholds 0.7 / 0.7 / 0.8, coarse first pass on.
"""


if __name__ == "__main__":
    main()
