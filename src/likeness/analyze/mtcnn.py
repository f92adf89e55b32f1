"""MTCNN face detection on ONNX Runtime: a cascade of three small networks (Zhang et al. 2016, "Joint Face Detection
and Alignment using Multi-task Cascaded Convolutional Networks") that finds far smaller faces than dlib's HOG and
gives five landmarks per face (bench/detection.py has the figures).

Weights: the classic MTCNN weights as the ``mtcnn`` package ships them (MIT licence, copyright 2019-2024 Iván de Paz
Centeno, https://github.com/ipazc/mtcnn): lists of Keras arrays in ``mtcnn/assets/weights/{p,r,o}net.lz4``. Only those
files are read (joblib); the package's own code imports TensorFlow and is never imported. The layer plans below
follow its ``mtcnn/network/*.py``; the graphs are ours, built at first use and cached under ``<home>/models``.

Cost: P-net runs over an image pyramid that starts where a ``faces.min_face_px`` face fills its 12 px window, so it
costs in proportion to the picture's area over that size squared; R-net and O-net cost per candidate (O-net about
1 ms), which is what explodes on a crowd, so both are capped, best scores kept (``faces.mtcnn_max_rnet`` / ``_onet``).
A coarse first pass without the two finest pyramid levels (three quarters of P-net's work) stands alone when every
face it finds is large; otherwise the full pyramid runs and reuses every network answer already computed, so its
answer is exactly the full pyramid's (``faces.mtcnn_coarse_first``: about 0.6x the cost on portraits, 1.0x on
pictures without faces, ~1.05x on crowds; bench/detection.py). Non-maximum suppression works on the pairs of boxes
that can overlap only, so a crowd's thousands of P-net windows cost array operations, not a quadratic loop.

Boxes: dlib's 5-point shape predictor was trained on HOG boxes, which are square and sit lower on the face than
MTCNN's; ``Detection.box`` is the MTCNN box mapped onto the HOG box of the same face (bench/mtcnn_boxes.py fits it).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from likeness.analyze import runtime
from likeness.analyze.faces import Detection
from likeness.errors import ConfigurationError
from likeness.settings import FaceSettings

if TYPE_CHECKING:
    import onnx

NETS = ("pnet", "rnet", "onet")
INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}  # P-net is fully convolutional: any image size
# Layers in the order they consume weight arrays: conv (kernel HWIO, bias), prelu (alpha), dense (kernel, bias).
# "pool<k><s|v>": max pool k x k, stride 2, TensorFlow "same" or "valid" padding. "flat": Keras's Permute((2, 1, 3))
# then Flatten, so the first dense layer expects its inputs in (width, height, channel) order.
PLANS = {
    "pnet": ("conv", "prelu", "pool2s", "conv", "prelu", "conv", "prelu"),
    "rnet": ("conv", "prelu", "pool3s", "conv", "prelu", "pool3v", "conv", "prelu", "flat", "dense", "prelu"),
    "onet": (
        *("conv", "prelu", "pool3s", "conv", "prelu", "pool3v", "conv", "prelu", "pool2s", "conv", "prelu"),
        *("flat", "dense", "prelu"),
    ),
}
# Output heads, each one conv (P-net) or dense layer on the trunk; "face" is a softmax over (not face, face).
HEADS = {"pnet": ("box", "face"), "rnet": ("box", "face"), "onet": ("box", "points", "face")}
HEAD_WIDTH = {"box": 4, "points": 10, "face": 2}
CELL, STRIDE = 12, 2  # a P-net output cell looks at a 12 px window, every 2 px of the scaled image
MIN_WINDOW = 12
BATCH = 256  # crops per R-net / O-net call
MEAN, SCALE = 127.5, 1 / 128  # pixels to the networks' inputs
COARSE_SKIP = 2  # pyramid levels the coarse pass leaves out: 1 - 0.709^4, three quarters of P-net's work
# The cells around a P-net cell whose windows overlap its window by half or more (IoU: neighbours 0.53-0.71, two
# cells apart along an axis exactly 0.5, anything else at most 0.38): what grid_nms suppresses around a cell kept.
SUPPRESS = np.zeros((5, 5), dtype=bool)
SUPPRESS[1:4, 1:4] = SUPPRESS[2, :] = SUPPRESS[:, 2] = True

# dlib's shape predictor expects the HOG detector's box: square, side HOG_SIDE x sqrt(w * h) of the MTCNN box, its
# centre moved by (HOG_DX, HOG_DY) x that root. Fitted by bench/mtcnn_boxes.py (least squares over the faces both
# detectors found in the package pictures and ../shared/eval-data/faces: 445 faces, residual std 0.07 / 0.06 / 0.04).
# The 128-d descriptor from the mapped box lies at median 0.034 (p90 0.061) from the one the HOG box gives, against
# 0.055 (p90 0.095) from MTCNN's own box.
HOG_SIDE, HOG_DX, HOG_DY = 0.950, 0.003, 0.069


def weights_dir() -> Path:
    """The folder of the ``mtcnn`` package's weight files, found without importing the package (TensorFlow)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the mtcnn package (MTCNN weights) is not installed: pip install mtcnn")
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights"


def weight_file(net: str) -> Path:
    return weights_dir() / f"{net}.lz4"


def load_weights(net: str) -> list[np.ndarray]:
    import joblib

    return [np.asarray(a, dtype=np.float32) for a in joblib.load(weight_file(net))]


class _Graph:
    """Collects ONNX nodes and initializers while the plan consumes the weight arrays in order."""

    def __init__(self, weights: list[np.ndarray]) -> None:
        self.weights = iter(weights)
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"w{len(self.initializers)}"
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def op(self, kind: str, inputs: list[str], out: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = out or f"t{len(self.nodes)}"
        self.nodes.append(helper.make_node(kind, inputs, [out], name=f"n{len(self.nodes)}", **attrs))
        return out

    def layer(self, x: str, kind: str, out: str | None = None) -> str:
        if kind == "conv":  # Keras HWIO kernels, ONNX wants OIHW
            kernel, bias = next(self.weights), next(self.weights)
            return self.op("Conv", [x, self.const(kernel.transpose(3, 2, 0, 1)), self.const(bias)], out)
        if kind == "dense":
            kernel, bias = next(self.weights), next(self.weights)
            return self.op("Gemm", [x, self.const(kernel), self.const(bias)], out)
        if kind == "prelu":  # alpha (1, 1, C) is shared over height and width: broadcast as (C, 1, 1) in NCHW
            alpha = next(self.weights)
            return self.op("PRelu", [x, self.const(alpha.reshape(-1, 1, 1) if alpha.ndim == 3 else alpha)], out)
        if kind == "flat":
            return self.op("Flatten", [self.op("Transpose", [x], perm=[0, 3, 2, 1])], out, axis=1)
        size, pad = int(kind[4]), {"s": "SAME_UPPER", "v": "VALID"}[kind[5]]  # TF "same" pads at the end first
        return self.op("MaxPool", [x], out, kernel_shape=[size, size], strides=[2, 2], auto_pad=pad)


def build_graph(net: str) -> onnx.ModelProto:
    """The ONNX graph (NCHW, dynamic batch; P-net also dynamic height and width) of one of the three networks."""
    from onnx import TensorProto, helper

    graph = _Graph(load_weights(net))
    x = "image"
    for kind in PLANS[net]:
        x = graph.layer(x, kind)
    head_kind = "conv" if net == "pnet" else "dense"
    outputs = []
    for head in HEADS[net]:
        if head == "face":
            graph.op("Softmax", [graph.layer(x, head_kind)], head, axis=1)
        else:
            graph.layer(x, head_kind, head)
        shape: list[str | int] = ["n", HEAD_WIDTH[head], "oh", "ow"] if net == "pnet" else ["n", HEAD_WIDTH[head]]
        outputs.append(helper.make_tensor_value_info(head, TensorProto.FLOAT, shape))
    side = INPUT_SIDE[net]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, side or "h", side or "w"])]
    body = helper.make_graph(graph.nodes, f"mtcnn_{net}", inputs, outputs, graph.initializers)
    return helper.make_model(body, opset_imports=[helper.make_opsetid("", 17)], ir_version=8, producer_name="likeness")


def graph_path(cache_dir: Path, net: str) -> Path:
    return runtime.cached_model(cache_dir, f"mtcnn-{net}", [weight_file(net)], lambda: build_graph(net))


@dataclass
class Candidates:
    """Face boxes (x1, y1, x2, y2) in working-image pixels, their scores and, after O-net, 5 landmarks each."""

    boxes: np.ndarray  # (n, 4) float
    scores: np.ndarray  # (n,)
    points: np.ndarray  # (n, 5, 2), empty before O-net

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))

    def take(self, index: np.ndarray) -> Candidates:
        return Candidates(
            self.boxes[index], self.scores[index], self.points[index] if len(self.points) else self.points
        )

    def best(self, limit: int) -> Candidates:
        """The ``limit`` best-scoring candidates: the cap that bounds R-net and O-net on crowds."""
        return self if len(self.scores) <= limit else self.take(np.argsort(-self.scores, kind="stable")[:limit])

    @staticmethod
    def concat(parts: list[Candidates]) -> Candidates:
        parts = [p for p in parts if len(p.scores)]
        if not parts:
            return Candidates.empty()
        return Candidates(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("boxes", "scores", "points")))


class MtcnnDetector:
    """The MTCNN cascade: image pyramid -> P-net proposals -> R-net -> O-net (with 5 landmarks)."""

    name = "mtcnn"
    confident = 0.98  # O-net's face probability; false boxes on no-face pictures here scored 0.94-0.95

    def __init__(self, settings: FaceSettings, cache_dir: Path, threads: int = 0, device: str = "cpu") -> None:
        self._settings = settings
        self._nets = {net: runtime.session(graph_path(cache_dir, net), threads, device) for net in NETS}

    def detect(self, pixels: np.ndarray) -> list[Detection]:
        """Faces in ``pixels`` coordinates, found on a copy of at most ``mtcnn_max_side`` px."""
        image = Image.fromarray(_rgb(pixels))
        factor = min(1.0, self._settings.mtcnn_max_side / max(image.size))
        if factor < 1.0:
            size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
            image = image.resize(size, Image.Resampling.BILINEAR)
        found = self.cascade(image, max(MIN_WINDOW, self._settings.min_face_px * factor))
        return [to_detection(box / factor, score, points / factor) for box, score, points in _rows(found)]

    def turns(self, pixels: np.ndarray, found: Detection) -> int:
        """The quarter turns (``np.rot90``'s k) that make this face upright: O-net judges the face's square crop in
        its four orientations (four 48 px crops, ~1 ms each). The cascade itself finds faces up to ~90 degrees off,
        and upside down, with high scores; the shape predictor and the embedding network need them upright."""
        x, y, w, h = found.box
        half, cx, cy = max(w, h) / 2, x + w / 2, y + h / 2
        square = (cx - half, cy - half, cx + half, cy + half)
        crop = Image.fromarray(_rgb(pixels)).crop(square).resize((48, 48), Image.Resampling.BILINEAR)
        crops = np.stack([np.rot90(np.asarray(crop), k) for k in range(4)])
        (face,) = self._nets["onet"].run(["face"], {"image": normalize(crops)})
        return int(np.argmax(face[:, 1]))

    def cascade(self, image: Image.Image, min_face: float) -> Candidates:
        """Faces of ``image`` (working pixels) at least ``min_face`` px. With ``mtcnn_coarse_first``, the pyramid
        without its finest levels first; when that is not enough the full pyramid runs, and since nothing is
        computed twice its answer is exactly the full pyramid's, at the price of the coarse pass's leftovers."""
        s = self._settings
        levels = pyramid(image.width, image.height, min_face, s.mtcnn_scale_factor)
        run = _Run(self._nets, s, image)
        if s.mtcnn_coarse_first and len(levels) > COARSE_SKIP + 1:
            coarse = run.faces(levels[COARSE_SKIP:])
            if large_faces_only(coarse, s.mtcnn_coarse_enough * MIN_WINDOW / levels[COARSE_SKIP]):
                return coarse
        return run.faces(levels)


class _Run:
    """One picture's way through the cascade. P-net levels and R-net / O-net answers are kept per box, so the full
    pyramid after a coarse pass asks the networks only about what the coarse pass did not see."""

    def __init__(self, nets: dict[str, Any], settings: FaceSettings, image: Image.Image) -> None:
        self.nets, self.settings, self.image = nets, settings, image
        self.levels: dict[float, Candidates] = {}
        self.answers: dict[str, dict[bytes, list[np.ndarray]]] = {"rnet": {}, "onet": {}}

    def faces(self, scales: list[float]) -> Candidates:
        s = self.settings
        for scale in scales:
            if scale not in self.levels:
                self.levels[scale] = self.pnet(scale)
        found = propose([self.levels[scale] for scale in scales]).best(s.mtcnn_max_rnet)
        found = self.refine("rnet", found, s.mtcnn_rnet_threshold).best(s.mtcnn_max_onet)
        return self.refine("onet", found, s.mtcnn_onet_threshold)

    def pnet(self, scale: float) -> Candidates:
        """P-net on the picture scaled by ``scale``: its windows above the threshold, regressed and squared."""
        size = (math.ceil(self.image.width * scale), math.ceil(self.image.height * scale))
        scaled = normalize(np.asarray(self.image.resize(size, Image.Resampling.BILINEAR))[None])
        box, face = self.nets["pnet"].run(["box", "face"], {"image": scaled})
        ys, xs = grid_nms(face[0, 1], self.settings.mtcnn_pnet_threshold)
        windows = (np.stack([xs, ys, xs, ys], axis=1) * STRIDE + np.array([0, 0, CELL, CELL])) / scale
        return Candidates(square(regress(windows, box[0][:, ys, xs].T)), face[0, 1, ys, xs], np.zeros((0, 5, 2)))

    def heads(self, net: str, boxes: np.ndarray) -> dict[str, np.ndarray]:
        """R-net's or O-net's outputs for each box, in batches, asking only about boxes this run has not asked."""
        memo = self.answers[net]
        keys = [box.tobytes() for box in boxes]
        todo = [i for i, key in enumerate(keys) if key not in memo]
        if todo:
            crops = cut(self.image, boxes[todo], INPUT_SIDE[net] or 0)
            batches = [crops[i : i + BATCH] for i in range(0, len(crops), BATCH)]
            outputs = [self.nets[net].run(list(HEADS[net]), {"image": batch}) for batch in batches]
            rows = [np.concatenate([o[h] for o in outputs]) for h in range(len(HEADS[net]))]
            for j, i in enumerate(todo):
                memo[keys[i]] = [head[j] for head in rows]
        return {name: np.stack([memo[key][h] for key in keys]) for h, name in enumerate(HEADS[net])}

    def refine(self, net: str, found: Candidates, threshold: float) -> Candidates:
        """R-net or O-net on the candidates: keep the faces, regress their boxes (O-net: and place the landmarks)."""
        if not len(found.scores):
            return found
        heads = self.heads(net, found.boxes)
        keep = np.nonzero(heads["face"][:, 1] > threshold)[0]
        boxes, score = found.boxes[keep], heads["face"][keep, 1]
        if net == "rnet":
            boxes = regress(boxes, heads["box"][keep])
            kept = nms(boxes, score, 0.7)
            return Candidates(square(boxes[kept]), score[kept], found.points)
        points = landmarks(boxes, heads["points"][keep])
        boxes = regress(boxes, heads["box"][keep])
        return Candidates(boxes, score, points).take(nms(boxes, score, self.settings.mtcnn_nms, by_min=True))


def large_faces_only(found: Candidates, smallest: float) -> bool:
    """Whether the coarse pass can stand alone: it found faces, and all of them are at least ``smallest`` px (a
    picture of large faces); otherwise smaller faces may be there too and the fine levels must run."""
    if not len(found.scores):
        return False
    return bool(np.sqrt(np.prod(found.boxes[:, 2:] - found.boxes[:, :2], axis=1)).min() >= smallest)


def propose(levels: list[Candidates]) -> Candidates:
    """The P-net windows of every level; windows of different levels that converged on the same face are one."""
    found = Candidates.concat(levels)
    return found.take(nms(found.boxes, found.scores, 0.7))


def _rgb(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    return np.ascontiguousarray(pixels[..., :3], dtype=np.uint8)


def normalize(batch: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 NCHW in [-1, 1], as the networks were trained."""
    return ((batch.astype(np.float32) - MEAN) * SCALE).transpose(0, 3, 1, 2).copy()


def pyramid(width: int, height: int, min_face: float, factor: float) -> list[float]:
    """Scales at which a ``min_face`` px face fills P-net's 12 px window, then ever smaller, down to 12 px images."""
    scale = MIN_WINDOW / min_face
    scales = []
    while min(width, height) * scale >= MIN_WINDOW:
        scales.append(scale)
        scale *= factor
    return scales


def cut(image: Image.Image, boxes: np.ndarray, side: int) -> np.ndarray:
    """Each box resized to side x side (PIL's bilinear, which averages when it shrinks), normalized: (n, 3, side,
    side). A box that crosses the picture's edge is cut out first, black beyond the edge, as in training."""
    out = np.empty((len(boxes), side, side, 3), np.uint8)
    width, height = image.size
    for i, (x1, y1, x2, y2) in enumerate(np.rint(boxes).astype(int).tolist()):
        box = (x1, y1, max(x2, x1 + 1), max(y2, y1 + 1))
        if x1 >= 0 and y1 >= 0 and box[2] <= width and box[3] <= height:  # no copy of the region first
            patch = image.resize((side, side), Image.Resampling.BILINEAR, box=box)
        else:
            patch = image.crop(box).resize((side, side), Image.Resampling.BILINEAR)
        out[i] = np.asarray(patch)
    return normalize(out)


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply the networks' box corrections, which are fractions of the box's width and height."""
    size = boxes[:, 2:] - boxes[:, :2]
    return boxes + offsets * np.concatenate([size, size], axis=1)


def square(boxes: np.ndarray) -> np.ndarray:
    """The square of the longer side around each box's centre: what the next network was trained on."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]).max(axis=1, keepdims=True) / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def landmarks(boxes: np.ndarray, points: np.ndarray) -> np.ndarray:
    """O-net's points (5 x fractions of the width, then 5 of the height) in image pixels: (n, 5, 2)."""
    size = boxes[:, 2:] - boxes[:, :2]
    xs = boxes[:, :1] + points[:, :5] * size[:, :1]
    ys = boxes[:, 1:2] + points[:, 5:] * size[:, 1:]
    return np.stack([xs, ys], axis=2)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression: indexes of the boxes kept, best first. ``by_min`` divides the overlap by the
    smaller box's area instead of the union, which also removes a small box inside a large one.

    Only pairs of boxes that overlap along x are compared (found by sorting), and the greedy pass walks the pairs
    that conflict, weaker box last: a crowd's thousands of boxes cost array operations, not one pass per box."""
    first, second = _x_overlapping(boxes)
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[:, k]) for k in range(4))
    high = np.maximum(np.minimum(y2[first], y2[second]) - np.maximum(y1[first], y1[second]), 0)
    first, second, high = first[high > 0], second[high > 0], high[high > 0]
    inter = high * (np.minimum(x2[first], x2[second]) - np.maximum(x1[first], x1[second]))
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    denom = np.minimum(area[first], area[second]) if by_min else area[first] + area[second] - inter
    conflict = inter > threshold * np.maximum(denom, 1e-9)
    order = np.argsort(-scores, kind="stable")
    rank = np.empty(len(order), dtype=int)
    rank[order] = np.arange(len(order))
    a, b = first[conflict], second[conflict]
    strong, weak = np.where(rank[a] < rank[b], a, b), np.where(rank[a] < rank[b], b, a)
    alive = np.ones(len(boxes), dtype=bool)
    by_weak = np.argsort(rank[weak], kind="stable")  # a box's own fate is settled before it can suppress another
    for s, w in zip(strong[by_weak].tolist(), weak[by_weak].tolist(), strict=True):
        if alive[s]:
            alive[w] = False
    return order[alive[order]]


def _x_overlapping(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) of boxes whose x ranges overlap, each pair once."""
    by_x = np.argsort(boxes[:, 0], kind="stable")
    starts = boxes[by_x, 0]
    ends = np.searchsorted(starts, boxes[by_x, 2], side="left")  # boxes after position p that start before p ends
    counts = np.maximum(ends - np.arange(len(by_x)) - 1, 0)
    left = np.repeat(np.arange(len(by_x)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return by_x[left], by_x[left + 1 + offsets]


def grid_nms(face: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Greedy NMS at IoU 0.5 (the classic per-scale step) of the P-net cells scoring above ``threshold``: rows and
    columns of the survivors. At one scale P-net's windows are equal squares on a grid, so which windows overlap a
    kept one by half or more is a fixed pattern of cells (SUPPRESS): suppressing is marking it, linear in the cells.
    (Windows two cells apart overlap exactly half; they are suppressed, as float rounding of box NMS mostly did.)"""
    ys, xs = np.nonzero(face > threshold)
    order = np.argsort(-face[ys, xs], kind="stable")
    taken = np.zeros((face.shape[0] + 4, face.shape[1] + 4), dtype=bool)
    keep = []
    for k, y, x in zip(order.tolist(), ys[order].tolist(), xs[order].tolist(), strict=True):
        if not taken[y + 2, x + 2]:
            keep.append(k)
            taken[y : y + 5, x : x + 5] |= SUPPRESS
    return ys[keep], xs[keep]


def hog_box(box: np.ndarray) -> tuple[int, int, int, int]:
    """The MTCNN box (x1, y1, x2, y2) mapped onto where dlib's HOG detector puts the same face, as (x, y, w, h)."""
    w, h = box[2] - box[0], box[3] - box[1]
    root = math.sqrt(max(w * h, 0.0))
    cx, cy = (box[0] + box[2]) / 2 + HOG_DX * root, (box[1] + box[3]) / 2 + HOG_DY * root
    side = HOG_SIDE * root
    return round(cx - side / 2), round(cy - side / 2), round(side), round(side)


def to_detection(box: np.ndarray, score: float, points: np.ndarray) -> Detection:
    return Detection(hog_box(box), float(score), tuple((round(x), round(y)) for x, y in points))


def _rows(found: Candidates) -> list[tuple[np.ndarray, float, np.ndarray]]:
    return list(zip(found.boxes, found.scores.tolist(), found.points, strict=True))
