"""Detection recall at IoU 0.5 on eval-data/detect/boxes.json (ground truth >= 20 px), per HOG setting,
with the cost of each setting as a ratio to the cheapest one in the same run. Picks ``faces.upsample``.

    python bench/detection.py
"""

from __future__ import annotations

import json
import time

import numpy as np

from bench.common import require_eval_data, table, write_section
from likeness.analyze.faces import DlibEngine
from likeness.media import decode
from likeness.settings import FaceSettings, MediaLimits

MIN_PX = 20
CONFIGS = [(450, 0), (450, 1), (800, 0), (800, 1), (1024, 1)]  # (detect_max_side, upsample)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0.0, min(ax1, bx1) - max(a[0], b[0])), max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def evaluate(detect_max_side: int, upsample: int, images: dict[str, tuple[np.ndarray, float, list]]) -> dict:
    engine = DlibEngine(FaceSettings(detect_max_side=detect_max_side, upsample=upsample, min_face_px=1))
    hits = total = false_pos = 0
    started = time.perf_counter()
    for pixels, scale, truth in images.values():
        found = [tuple(v / scale for v in f.box) for f in engine.faces(pixels)]
        big = [t for t in truth if min(t[2], t[3]) >= MIN_PX]
        total += len(big)
        used: set[int] = set()
        for t in big:
            best = max(range(len(found)), key=lambda i: iou(t, found[i]), default=None)
            if best is not None and best not in used and iou(t, found[best]) >= 0.5:
                used.add(best)
                hits += 1
        # detections that match any (even tiny) ground truth are not false positives
        false_pos += sum(
            1 for i, f in enumerate(found) if i not in used and max((iou(f, t) for t in truth), default=0) < 0.5
        )
    return {
        "recall": hits / total,
        "hits": hits,
        "total": total,
        "fp": false_pos,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    root = require_eval_data() / "detect"
    boxes = json.loads((root / "boxes.json").read_text())
    images = {}
    for name, truth in boxes.items():
        media = decode((root / name).read_bytes(), MediaLimits(analysis_max_side=2048))
        images[name] = (media.pixels, media.scale, truth)
    groups = {
        "dlib (VOC)": {k: v for k, v in images.items() if k.startswith("dlib-")},
        "WIDER": {k: v for k, v in images.items() if k.startswith("wider-")},
    }
    rows, base = [], None
    for side, up in CONFIGS:
        results = {g: evaluate(side, up, imgs) for g, imgs in groups.items()}
        cost = sum(r["seconds"] for r in results.values())
        base = base or cost
        rows.append(
            [f"{side} px", up]
            + [f"{r['recall']:.2f} ({r['hits']}/{r['total']}), {r['fp']} FP" for r in results.values()]
            + [f"{cost / base:.2f}x"]
        )
        print(rows[-1], flush=True)
    write_section(
        "detection",
        "Face detection (dlib HOG)",
        f"""
Recall at IoU >= 0.5 against `detect/boxes.json`, counting only ground-truth boxes of at least {MIN_PX} px on the
shorter side (WIDER has many smaller ones); detections that overlap any ground-truth box, however small, are not
counted as false positives. The picture is downscaled so its longer side is at most the given size, then the
HOG detector runs with the given upsampling. Cost is total detection time relative to the first row, same run.

{table(["detect size", "upsample", "dlib VOC images (43 faces)", "WIDER images", "cost"], rows)}

Default chosen: `faces.detect_max_side = 800`, `faces.upsample = 1` (see docs/calibration.md for why).
""",
    )


if __name__ == "__main__":
    main()
