"""MTCNN on ONNX Runtime (analyze/mtcnn.py) with the real weights of the mtcnn package, on package pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlib
import numpy as np
import pytest
from PIL import Image
from skimage import data

from likeness.analyze import mtcnn, runtime
from likeness.analyze.faces import Detection
from likeness.settings import FaceSettings
from tests import images


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def detector(cache: Path) -> mtcnn.MtcnnDetector:
    return mtcnn.MtcnnDetector(FaceSettings(), cache, threads=1)


def resized(pixels: np.ndarray, factor: float) -> np.ndarray:
    h, w = pixels.shape[:2]
    return np.asarray(Image.fromarray(pixels).resize((round(w * factor), round(h * factor)), Image.Resampling.LANCZOS))


def camera_rgb() -> np.ndarray:
    return np.stack([data.camera()] * 3, axis=-1)


def group() -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Three people at three sizes on one canvas, and the (x, y, w, h) region each was pasted into."""
    canvas = np.full((560, 860, 3), 200, np.uint8)
    parts = [
        (resized(images.astronaut_face_crop(), 0.5), (30, 60)),  # face ~50 px
        (resized(images.grace_hopper(), 0.5), (220, 40)),  # face ~105 px
        (camera_rgb()[60:300, 120:360], (580, 280)),  # the cameraman, face ~65 px
    ]
    regions = []
    for pixels, (x, y) in parts:
        h, w = pixels.shape[:2]
        canvas[y : y + h, x : x + w] = pixels
        regions.append((x, y, w, h))
    return canvas, regions


def centre(box: tuple[int, int, int, int]) -> tuple[float, float]:
    return box[0] + box[2] / 2, box[1] + box[3] / 2


def inside(point: tuple[float, float], region: tuple[int, int, int, int]) -> bool:
    x, y, w, h = region
    return x <= point[0] <= x + w and y <= point[1] <= y + h


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


# -- a pure-numpy forward pass with Keras's semantics (NHWC, HWIO kernels, TensorFlow "same" pooling), written from
# the package's layer definitions independently of the ONNX builder, to hold the graphs to the reference network.


def conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel.shape[:2], axis=(1, 2))  # n, h, w, c, kh, kw
    return np.einsum("nijcab,abco->nijo", windows, kernel, optimize=True) + bias


def pool(x: np.ndarray, size: int, same: bool) -> np.ndarray:
    if same:
        pads = [max((-(-d // 2) - 1) * 2 + size - d, 0) for d in x.shape[1:3]]
        x = np.pad(x, [(0, 0), *((p // 2, p - p // 2) for p in pads), (0, 0)], constant_values=-np.inf)
    return np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))[:, ::2, ::2].max(axis=(-1, -2))


def prelu(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0) + alpha * np.minimum(x, 0)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference(net: str, x: np.ndarray) -> list[np.ndarray]:
    """The network's outputs (NHWC for P-net) for normalized NHWC input, in float64."""
    w = [a.astype(np.float64) for a in mtcnn.load_weights(net)]
    if net == "pnet":
        x = pool(prelu(conv(x, w[0], w[1]), w[2]), 2, same=True)
        x = prelu(conv(prelu(conv(x, w[3], w[4]), w[5]), w[6], w[7]), w[8])
        return [conv(x, w[9], w[10]), softmax(conv(x, w[11], w[12]))]
    x = pool(prelu(conv(x, w[0], w[1]), w[2]), 3, same=True)
    x = pool(prelu(conv(x, w[3], w[4]), w[5]), 3, same=False)
    x = prelu(conv(x, w[6], w[7]), w[8])
    i = 9
    if net == "onet":
        x = prelu(conv(pool(x, 2, same=True), w[9], w[10]), w[11])
        i = 12
    x = x.transpose(0, 2, 1, 3).reshape(len(x), -1)  # Keras's Permute((2, 1, 3)) then Flatten
    x = prelu(x @ w[i] + w[i + 1], w[i + 2])
    heads = [x @ w[j] + w[j + 1] for j in range(i + 3, len(w), 2)]
    return [*heads[:-1], softmax(heads[-1])]


def normalized(batch: np.ndarray) -> np.ndarray:
    return (batch.astype(np.float64) - 127.5) / 128


def test_graphs_agree_with_a_numpy_forward_pass(cache: Path) -> None:
    astronaut, hopper = images.astronaut(), images.grace_hopper()
    face_crops = [astronaut[60:160, 170:270], hopper[110:330, 150:370]]
    background = [astronaut[380:480, 380:480], hopper[0:100, 0:100]]
    for net, side in (("pnet", 0), ("rnet", 24), ("onet", 48)):
        if side:
            batch = np.stack([resized(c, side / c.shape[0]) for c in face_crops + background])
        else:
            batch = resized(astronaut, 0.247)[None]  # 126 x 126: odd sizes after the first convolution
        session = runtime.session(mtcnn.graph_path(cache, net), threads=1)
        got = session.run(list(mtcnn.HEADS[net]), {"image": normalized(batch).transpose(0, 3, 1, 2).astype(np.float32)})
        want = reference(net, normalized(batch))
        for g, r in zip(got, want, strict=True):
            g = g.transpose(0, 2, 3, 1) if net == "pnet" else g
            assert g.shape == r.shape
            assert np.abs(g - r).max() < 1e-4, net
        if side:  # and the weights are a face detector: faces score high, background low
            assert (got[-1][:2, 1] > 0.9).all() and (got[-1][2:, 1] < 0.5).all(), net


def test_finds_every_face_of_a_group_picture_once(detector: mtcnn.MtcnnDetector) -> None:
    canvas, regions = group()
    found = detector.detect(canvas)
    assert len(found) == len(regions)
    for region in regions:
        assert sum(inside(centre(f.box), region) for f in found) == 1
    for f in found:
        assert 0.8 < f.score <= 1.0
        (lx, ly), (rx, ry), nose, (mlx, mly), (mrx, mry) = f.landmarks
        assert lx < rx and mlx < mrx  # the picture's left eye and mouth corner first
        assert max(ly, ry) < nose[1] < min(mly, mry)  # eyes above the nose, the nose above the mouth
        x, y, w, h = f.box
        assert all(x - w / 2 <= px <= x + 1.5 * w and y - h / 2 <= py <= y + 1.5 * h for px, py in f.landmarks)


def test_faces_of_different_sizes_are_found_at_their_size(detector: mtcnn.MtcnnDetector) -> None:
    canvas, _ = group()
    sizes = sorted(f.box[2] for f in detector.detect(canvas))
    assert 35 <= sizes[0] <= 70 and 80 <= sizes[-1] <= 150  # the astronaut's ~50 px face, Grace Hopper's ~105 px


@pytest.mark.parametrize("name", sorted(images.NO_FACE))
def test_no_face_in_pictures_without_people(detector: mtcnn.MtcnnDetector, name: str) -> None:
    assert detector.detect(images.NO_FACE[name]()) == []


def test_box_is_mapped_onto_the_box_hog_gives_the_same_face(detector: mtcnn.MtcnnDetector) -> None:
    """dlib's shape predictor expects HOG's box: the mapped box is much closer to it than MTCNN's own box."""
    for pixels in (images.astronaut(), images.grace_hopper(), resized(images.astronaut_face_crop(), 0.6)):
        (raw,) = mtcnn._rows(detector.cascade(Image.fromarray(pixels), 20))
        x1, y1, x2, y2 = raw[0]
        (mapped,) = detector.detect(pixels)
        rects = [(r.left(), r.top(), r.width(), r.height()) for r in dlib.get_frontal_face_detector()(pixels, 1)]
        hog = max(rects, key=lambda r: iou(r, mapped.box))
        assert iou(mapped.box, hog) >= 0.7  # the mapping's residual spread is ~7% of the size (bench/mtcnn_boxes.py)
        assert iou(mapped.box, hog) > iou((x1, y1, x2 - x1, y2 - y1), hog)
        assert mapped.box == mtcnn.hog_box(raw[0])


def test_boxes_are_in_the_given_pixels_when_the_working_copy_is_smaller(cache: Path) -> None:
    pixels = resized(images.grace_hopper(), 2.0)  # 1024 x 1200
    (small,) = mtcnn.MtcnnDetector(FaceSettings(mtcnn_max_side=400), cache, threads=1).detect(pixels)
    (full,) = mtcnn.MtcnnDetector(FaceSettings(mtcnn_max_side=1200), cache, threads=1).detect(pixels)
    assert iou(small.box, full.box) >= 0.8
    assert np.abs(np.subtract(small.landmarks, full.landmarks)).max() <= 0.05 * full.box[2]


def test_a_grey_picture_works(detector: mtcnn.MtcnnDetector) -> None:
    assert len(detector.detect(data.camera())) == 1  # 2-D pixels


class Counting:
    """A real session that also counts the crops it is asked about."""

    def __init__(self, session: Any) -> None:
        self.session, self.seen = session, 0

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> Any:
        self.seen += len(feed["image"])
        return self.session.run(names, feed)


def crowd(rows: int = 10, columns: int = 20) -> np.ndarray:
    """scikit-image's LFW faces (25 px crops), tiled with a margin: 200 small faces."""
    faces = (data.lfw_subset()[:100] * 255).astype(np.uint8)
    canvas = np.full((rows * 38 + 12, columns * 37 + 12), 128, np.uint8)
    for i in range(rows * columns):
        y, x = divmod(i, columns)
        canvas[y * 38 + 12 : y * 38 + 37, x * 37 + 12 : x * 37 + 37] = faces[i % len(faces)]
    return np.stack([canvas] * 3, axis=-1)


def test_candidate_caps_bound_a_crowd_and_still_return_faces(cache: Path) -> None:
    pixels = crowd()
    uncapped = mtcnn.MtcnnDetector(FaceSettings(mtcnn_coarse_first=False), cache, threads=1)
    assert len(uncapped.detect(pixels)) > 100
    capped = mtcnn.MtcnnDetector(
        FaceSettings(mtcnn_coarse_first=False, mtcnn_max_rnet=150, mtcnn_max_onet=40), cache, threads=1
    )
    capped._nets = {name: Counting(session) for name, session in capped._nets.items()}
    found = capped.detect(pixels)
    assert capped._nets["rnet"].seen <= 150 and capped._nets["onet"].seen <= 40
    assert 20 <= len(found) <= 40
    assert all(f.score > 0.8 for f in found)


def test_the_coarse_first_pass_keeps_the_full_pyramids_answers(cache: Path) -> None:
    canvas, _ = group()  # a 50 px face: the coarse pass is not enough, the full pyramid runs
    coarse = mtcnn.MtcnnDetector(FaceSettings(), cache, threads=1)
    full = mtcnn.MtcnnDetector(FaceSettings(mtcnn_coarse_first=False), cache, threads=1)
    assert coarse.detect(canvas) == full.detect(canvas)
    portrait = images.grace_hopper()  # one large face: the coarse pass stands alone, and finds it
    counted = Counting(coarse._nets["pnet"])
    coarse._nets["pnet"] = counted
    (alone,) = coarse.detect(portrait)
    (both,) = full.detect(portrait)
    levels = mtcnn.pyramid(portrait.shape[1], portrait.shape[0], 20, 0.709)
    assert counted.seen == len(levels) - mtcnn.COARSE_SKIP  # the finest levels never ran
    assert iou(alone.box, both.box) >= 0.9


def test_graphs_are_built_once_and_reused(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mtcnn.MtcnnDetector(FaceSettings(), tmp_path, threads=1)
    built = sorted(tmp_path.iterdir())
    assert [p.name.rsplit("-", 1)[0] for p in built] == ["mtcnn-onet", "mtcnn-pnet", "mtcnn-rnet"]
    stamps = [p.stat().st_mtime_ns for p in built]

    def refuse(net: str) -> None:
        raise AssertionError(f"{net} rebuilt")

    monkeypatch.setattr(mtcnn, "build_graph", refuse)
    detector = mtcnn.MtcnnDetector(FaceSettings(), tmp_path, threads=1)
    assert sorted(tmp_path.iterdir()) == built and [p.stat().st_mtime_ns for p in built] == stamps
    assert len(detector.detect(images.astronaut())) == 1


def test_nms_is_greedy_nms() -> None:
    def greedy(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool) -> list[int]:
        keep: list[int] = []
        for i in np.argsort(-scores, kind="stable"):
            a = (boxes[i, 0], boxes[i, 1], boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1])
            if all(overlap(a, boxes[j], by_min) <= threshold for j in keep):
                keep.append(int(i))
        return keep

    def overlap(a: tuple[float, ...], b: np.ndarray, by_min: bool) -> float:
        bb = (b[0], b[1], b[2] - b[0], b[3] - b[1])
        if not by_min:
            return iou(a, bb)
        iw = max(0.0, min(a[0] + a[2], bb[0] + bb[2]) - max(a[0], bb[0]))
        ih = max(0.0, min(a[1] + a[3], bb[1] + bb[3]) - max(a[1], bb[1]))
        return iw * ih / min(a[2] * a[3], bb[2] * bb[3])

    rng = np.random.default_rng(7)
    corner = rng.uniform(0, 300, (400, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(10, 60, (400, 2))], axis=1)
    scores = rng.uniform(0, 1, 400)
    for threshold, by_min in ((0.3, False), (0.5, False), (0.7, True)):
        kept = mtcnn.nms(boxes, scores, threshold, by_min).tolist()
        assert kept == greedy(boxes, scores, threshold, by_min)
        assert 0 < len(kept) < 400
    assert mtcnn.nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_grid_nms_is_nms_of_the_windows_at_half_overlap() -> None:
    face = np.random.default_rng(3).uniform(0, 1, (40, 50))
    ys, xs = mtcnn.grid_nms(face, 0.6)
    every_y, every_x = np.nonzero(face > 0.6)
    windows = np.stack([every_x, every_y, every_x, every_y], axis=1) * 2.0 + [0, 0, 12, 12]
    kept = mtcnn.nms(windows, face[every_y, every_x], 0.5 - 1e-9)  # windows two cells apart overlap exactly half
    assert sorted(zip(ys.tolist(), xs.tolist(), strict=True)) == sorted(
        zip(every_y[kept].tolist(), every_x[kept].tolist(), strict=True)
    )


def test_detections_are_the_detector_protocols() -> None:
    assert mtcnn.MtcnnDetector.name == "mtcnn"
    found = mtcnn.to_detection(np.array([10.0, 20.0, 50.0, 70.0]), 0.9, np.zeros((5, 2)))
    assert isinstance(found, Detection) and len(found.landmarks) == 5
