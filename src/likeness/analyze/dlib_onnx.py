"""dlib's face-recognition ResNet, read from the ``.dat`` file face_recognition_models ships and rebuilt as an ONNX
graph, so the same weights run on ONNX Runtime (about 20x faster than dlib-bin's BLAS-less CPU code) and give the
same 128-d vectors: embeddings stored by either runtime compare.

The ``.dat`` file is dlib's own serialization of ``anet_type`` (dlib's examples/dnn_face_recognition_ex.cpp). It
records each layer's parameters and hyper-parameters but not the network's nesting (tags, skips, add_prev), so the
nesting below mirrors the example's template aliases; a file of another shape fails to read, loudly. What matters
to get dlib's numbers: the input is ``(pixel - channel mean) / 256``; the stride-2 convolutions are unpadded; and
``add_prev`` adds tensors of different sizes by zero-extending the smaller one (channels, rows and columns).

Graph: input ``chips``, N x 150 x 150 x 3 uint8 RGB (what ``dlib.get_face_chip`` returns), dynamic N; output
``descriptors``, N x 128 float32, not normalised (as dlib gives them). The graph carries the SHA-256 of its own
``GraphProto`` in its metadata, checked on every load: a cached file that was changed or damaged is rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from likeness import log
from likeness.analyze import runtime
from likeness.errors import ConfigurationError

if TYPE_CHECKING:
    import onnx

NAME = "dlib_face_recognition_resnet_model_v1"
OPSET = 17
_DIGEST_KEY = "graph_sha256"


def dat_path() -> Path:
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


# -- dlib's serialization format (dlib/serialize.h, dlib/cuda/tensor.h) ------------------------------------------


class _Stream:
    """dlib's primitives: integers are a control byte (low nibble: byte count, 0x80: negative) then little-endian
    bytes; bools are ASCII '1'/'0'; floats are an integer mantissa and exponent; strings a length then bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self._data):
            raise ValueError(f"unexpected end of file at byte {self.pos}")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def integer(self) -> int:
        control = self._take(1)[0]
        size = control & 0x0F
        if size == 0 or size > 8 or control & 0x70:
            raise ValueError(f"bad integer control byte {control:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if control & 0x80 else value

    def boolean(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise ValueError(f"bad bool {byte!r} at byte {self.pos - 1}")
        return byte == b"1"

    def real(self) -> float:
        mantissa, exponent = self.integer(), self.integer()
        if exponent >= 32000:  # float_details' markers for inf, -inf and NaN
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def string(self) -> str:
        return self._take(self.integer()).decode("ascii")

    def version(self, *allowed: str) -> str:
        found = self.string()
        if found not in allowed:
            raise ValueError(f"found {found!r} where one of {allowed} was expected")
        return found

    def tensor(self) -> np.ndarray:
        """A resizable_tensor: version 2, then num_samples, k, nr, nc, then little-endian float32 values."""
        if (version := self.integer()) != 2:
            raise ValueError(f"tensor version {version}")
        shape = tuple(self.integer() for _ in range(4))
        count = int(np.prod(shape))
        return np.frombuffer(self._take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, ...]:
        """An alias_tensor: only its shape (the values live in the layer's ``params``)."""
        if (version := self.integer()) != 1:
            raise ValueError(f"alias_tensor version {version}")
        return tuple(self.integer() for _ in range(4))

    def at_end(self) -> bool:
        return self.pos == len(self._data)


# -- the layers of this network -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    mean: np.ndarray  # (3,) R, G, B
    size: tuple[int, int]


@dataclass(frozen=True)
class Conv:
    weights: np.ndarray  # (out, in, rows, cols), as ONNX wants
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Affine:
    gamma: np.ndarray  # per channel
    beta: np.ndarray


@dataclass(frozen=True)
class Relu:
    pass


@dataclass(frozen=True)
class Pool:
    kind: str  # "max" or "avg"
    window: tuple[int, int]  # (0, 0): the whole input (avg_pool_everything)
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Dense:
    weights: np.ndarray  # (inputs, outputs): dlib computes x @ W


@dataclass(frozen=True)
class Tag:
    id: int


@dataclass(frozen=True)
class Skip:
    id: int  # the output of the nearest tag ``id`` below replaces the current one


@dataclass(frozen=True)
class AddPrev:
    id: int  # the current output plus the nearest tag ``id`` below, the smaller zero-extended


Layer = Input | Conv | Affine | Relu | Pool | Dense | Tag | Skip | AddPrev

# anet_type from the outermost layer (under the loss) to the innermost (over the input), as dlib nests them:
# ares<N> = relu<add_prev1<block<N,1,tag1<...>>>>, ares_down<N> = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<
# block<N,2,tag1<...>>>>>>>, block<N,s> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,s,s,...>>>>>.
_ARES = ("relu", "add_prev1", "affine", "con", "relu", "affine", "con", "tag1")
_ARES_DOWN = ("relu", "add_prev2", "avg_pool", "skip1", "tag2", "affine", "con", "relu", "affine", "con", "tag1")
NESTING: tuple[str, ...] = (
    ("fc", "avg_pool")
    + _ARES_DOWN  # alevel0: 256
    + _ARES * 2
    + _ARES_DOWN  # alevel1: 256
    + _ARES * 2
    + _ARES_DOWN  # alevel2: 128
    + _ARES * 3
    + _ARES_DOWN  # alevel3: 64
    + _ARES * 3  # alevel4: 32
    + ("max_pool", "relu", "affine", "con")
)


def _con(s: _Stream) -> Conv:
    version = s.version("con_4", "con_5", "con_6")
    params = s.tensor().ravel()
    filters, rows, cols = s.integer(), s.integer(), s.integer()
    stride = (s.integer(), s.integer())
    padding = (s.integer(), s.integer())
    shape = s.alias()
    s.alias()  # the biases' shape
    for _ in range(4):  # learning-rate and weight-decay multipliers
        s.real()
    use_bias = s.boolean() if version in ("con_5", "con_6") else True
    if version == "con_6" and s.boolean():
        raise ValueError("con_ with a fused relu is not supported")
    size = int(np.prod(shape))
    if shape[0] != filters or shape[2:] != (rows, cols) or len(params) != size + filters * use_bias:
        raise ValueError(f"con_ parameters do not fit its shape {shape}")
    bias = params[size:] if use_bias else np.zeros(filters, np.float32)
    return Conv(params[:size].reshape(shape), bias, stride, padding)


def _affine(s: _Stream) -> Affine:
    version = s.version("affine_", "affine_2")
    params = s.tensor().ravel()
    gamma, beta = s.alias(), s.alias()
    conv_mode = s.integer() == 0  # dlib's layer_mode: CONV_MODE = 0 (per channel), FC_MODE = 1
    if version == "affine_2" and s.boolean():
        raise ValueError("disabled affine_ layers are not supported")
    n = int(np.prod(gamma))
    if not conv_mode or gamma != beta or len(params) != 2 * n:
        raise ValueError("only per-channel affine_ layers are supported")
    return Affine(params[:n], params[n:])


def _relu(s: _Stream) -> Relu:
    if s.version("relu_", "relu_2") == "relu_2" and s.boolean():
        raise ValueError("disabled relu_ layers are not supported")
    return Relu()


def _pool(kind: str) -> Callable[[_Stream], Pool]:
    def read(s: _Stream) -> Pool:
        s.version(f"{kind}_pool_2")
        window = (s.integer(), s.integer())
        stride = (s.integer(), s.integer())
        return Pool(kind, window, stride, (s.integer(), s.integer()))

    return read


def _fc(s: _Stream) -> Dense:
    version = s.version("fc_2", "fc_3")
    outputs, inputs = s.integer(), s.integer()
    params = s.tensor().ravel()
    s.alias()
    s.alias()
    has_bias = s.integer() == 0  # fc_bias_mode: FC_HAS_BIAS = 0, FC_NO_BIAS = 1
    for _ in range(4):
        s.real()
    if version == "fc_3":
        s.boolean()
    if has_bias or len(params) != inputs * outputs:
        raise ValueError("only fc_no_bias layers are supported")
    return Dense(params.reshape(inputs, outputs))


def _add_prev(s: _Stream) -> None:
    s.version("add_prev_")


def _input(s: _Stream) -> Input:
    s.version("input_rgb_image_sized")
    mean = np.array([s.real(), s.real(), s.real()], dtype=np.float32)
    return Input(mean, (s.integer(), s.integer()))


def _loss(s: _Stream) -> None:
    if s.integer() != 1:
        raise ValueError("add_loss_layer version")
    if s.version("loss_metric_", "loss_metric_2") == "loss_metric_2":
        s.real(), s.real()  # margin and distance threshold: training only


_DETAILS: dict[str, Callable[[_Stream], Layer | None]] = {
    "con": _con,
    "affine": _affine,
    "relu": _relu,
    "max_pool": _pool("max"),
    "avg_pool": _pool("avg"),
    "fc": _fc,
    "add_prev": _add_prev,
}


def _layer_state(s: _Stream, version: int, over_input: bool) -> None:
    """What add_layer writes after its details: three flags and the training-time tensors (empty when saved)."""
    for _ in range(3):
        s.boolean()
    s.tensor(), s.tensor()  # x_grad, cached_output
    if over_input:
        s.tensor()  # grad_final
        if version >= 3:
            s.integer()  # sample_expansion_factor
    elif version == 2:
        s.tensor()  # params_grad


def _token(token: str, s: _Stream) -> Layer | None:
    kind, tag = token.rstrip("0123456789"), token[len(token.rstrip("0123456789")) :]
    if kind == "tag":
        return Tag(int(tag))
    if kind == "skip":
        return Skip(int(tag))
    layer = _DETAILS[kind](s)
    return AddPrev(int(tag)) if kind == "add_prev" else layer


def read_network(data: bytes) -> list[Layer]:
    """The layers from the input up. dlib writes each wrapper's version outermost first, then the input, then each
    layer's details innermost first, so the versions are read before any layer."""
    s = _Stream(data)
    _loss(s)
    versions = [s.integer() for _ in NESTING]
    layers: list[Layer] = [_input(s)]
    for token, version in reversed(list(zip(NESTING, versions, strict=True))):
        layer = _token(token, s)
        if isinstance(layer, Tag | Skip):
            if version != 1:
                raise ValueError(f"{token} version {version}")
        else:
            _layer_state(s, version, over_input=len(layers) == 1)
        if layer is not None:
            layers.append(layer)
    if not s.at_end():
        raise ValueError(f"{s.pos} bytes read, the file has more: not the network this reader knows")
    return layers


# -- the ONNX graph -----------------------------------------------------------------------------------------------


def fold(layers: list[Layer]) -> list[Layer]:
    """Each affine layer after a convolution goes into the convolution's weights and bias (dlib trained with batch
    normalisation, then replaced it by these per-channel affine layers)."""
    out: list[Layer] = []
    for layer in layers:
        previous = out[-1] if out else None
        if isinstance(layer, Affine) and isinstance(previous, Conv):
            gamma, beta = layer.gamma.astype(np.float64), layer.beta.astype(np.float64)
            weights = previous.weights.astype(np.float64) * gamma[:, None, None, None]
            bias = previous.bias.astype(np.float64) * gamma + beta
            out[-1] = Conv(weights.astype(np.float32), bias.astype(np.float32), previous.stride, previous.padding)
        elif isinstance(layer, Affine):
            raise ValueError("an affine layer that does not follow a convolution")
        else:
            out.append(layer)
    return out


Shape = tuple[int, int, int]  # channels, rows, columns


class _Builder:
    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []

    def const(self, array: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"w{len(self.weights)}"
        self.weights.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, inputs: list[str], output: str | None = None, **attrs: Any) -> str:
        output = output or f"t{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(kind, inputs, [output], **attrs))
        return output


def _out_side(side: int, window: int, stride: int, padding: int) -> int:
    return (side + 2 * padding - window) // stride + 1


def _conv(g: _Builder, x: str, shape: Shape, layer: Conv) -> tuple[str, Shape]:
    rows, cols = layer.weights.shape[2:]
    (sy, sx), (py, px) = layer.stride, layer.padding
    y = g.op(
        "Conv",
        [x, g.const(layer.weights), g.const(layer.bias)],
        kernel_shape=[rows, cols],
        strides=[sy, sx],
        pads=[py, px, py, px],
    )
    return y, (layer.weights.shape[0], _out_side(shape[1], rows, sy, py), _out_side(shape[2], cols, sx, px))


def _pool_op(g: _Builder, x: str, shape: Shape, layer: Pool) -> tuple[str, Shape]:
    if layer.window == (0, 0):
        return g.op("GlobalAveragePool", [x]), (shape[0], 1, 1)
    (wy, wx), (sy, sx), (py, px) = layer.window, layer.stride, layer.padding
    kind = "MaxPool" if layer.kind == "max" else "AveragePool"
    y = g.op(kind, [x], kernel_shape=[wy, wx], strides=[sy, sx], pads=[py, px, py, px])
    return y, (shape[0], _out_side(shape[1], wy, sy, py), _out_side(shape[2], wx, sx, px))


def _extend(g: _Builder, x: str, shape: Shape, target: Shape) -> str:
    """Zero-extend channels, rows and columns at their ends, as dlib's add_prev does to the smaller operand."""
    if shape == target:
        return x
    pads = np.array([0, 0, 0, 0, 0, *(t - s for t, s in zip(target, shape, strict=True))], dtype=np.int64)
    return g.op("Pad", [x, g.const(pads)], mode="constant")


def _add(g: _Builder, a: tuple[str, Shape], b: tuple[str, Shape]) -> tuple[str, Shape]:
    target: Shape = (max(a[1][0], b[1][0]), max(a[1][1], b[1][1]), max(a[1][2], b[1][2]))
    return g.op("Add", [_extend(g, a[0], a[1], target), _extend(g, b[0], b[1], target)]), target


def _preprocess(g: _Builder, layer: Input) -> tuple[str, Shape]:
    """uint8 NHWC RGB chips -> dlib's input tensor: (pixel - mean) / 256, NCHW."""
    from onnx import TensorProto

    x = g.op("Cast", ["chips"], to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.const(layer.mean.reshape(1, 1, 1, 3))])
    x = g.op("Mul", [x, g.const(np.array(1 / 256, np.float32))])  # exact: a power of two
    return g.op("Transpose", [x], perm=[0, 3, 1, 2]), (3, *layer.size)


def build_model(layers: list[Layer]) -> onnx.ModelProto:
    from onnx import TensorProto, helper

    g = _Builder()
    current: tuple[str, Shape] = ("", (0, 0, 0))
    tags: dict[int, tuple[str, Shape]] = {}
    size = (0, 0)
    for layer in fold(layers):
        if isinstance(layer, Input):
            current, size = _preprocess(g, layer), layer.size
        elif isinstance(layer, Conv):
            current = _conv(g, *current, layer)
        elif isinstance(layer, Relu):
            current = (g.op("Relu", [current[0]]), current[1])
        elif isinstance(layer, Pool):
            current = _pool_op(g, *current, layer)
        elif isinstance(layer, Tag):
            tags[layer.id] = current
        elif isinstance(layer, Skip):
            current = tags[layer.id]
        elif isinstance(layer, AddPrev):
            current = _add(g, current, tags[layer.id])
        elif isinstance(layer, Dense):
            flat = g.op("Flatten", [current[0]], axis=1)
            current = (g.op("MatMul", [flat, g.const(layer.weights)], "descriptors"), (layer.weights.shape[1], 1, 1))
    chips = helper.make_tensor_value_info("chips", TensorProto.UINT8, ["N", size[0], size[1], 3])
    out = helper.make_tensor_value_info("descriptors", TensorProto.FLOAT, ["N", current[1][0]])
    graph = helper.make_graph(g.nodes, NAME, [chips], [out], g.weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="likeness")
    model.ir_version = 8  # readable by every onnxruntime the project allows (>= 1.17)
    helper.set_model_props(model, {_DIGEST_KEY: _graph_digest(model), "source": f"{NAME}.dat"})
    return model


def _graph_digest(model: onnx.ModelProto) -> str:
    return hashlib.sha256(model.graph.SerializeToString(deterministic=True)).hexdigest()


def build(dat: Path) -> onnx.ModelProto:
    try:
        return build_model(read_network(dat.read_bytes()))
    except (ValueError, KeyError, struct.error) as exc:
        raise ConfigurationError(f"cannot read dlib's network from {dat}: {exc}") from exc


# -- the cache ----------------------------------------------------------------------------------------------------


def _self_consistent(data: bytes) -> bool:
    """Whether ``data`` parses as a graph whose GraphProto has the digest its metadata names (slow: imports onnx)."""
    import onnx

    try:
        model = onnx.load_from_string(data)
    except Exception:  # protobuf's DecodeError, or anything else a damaged file provokes
        return False
    props = {p.key: p.value for p in model.metadata_props}
    return props.get(_DIGEST_KEY) == _graph_digest(model)


def _checked(path: Path, data: bytes) -> bool:
    """Whether the cached graph is sound. A seal beside it (the file's SHA-256) makes the usual check cheap and
    keeps ``import onnx`` (over a second) off the start of every worker; without a matching seal the graph is
    checked against its own digest and, if sound, sealed."""
    seal = path.with_name(path.name + ".sha256")
    digest = hashlib.sha256(data).hexdigest()
    if seal.is_file() and seal.read_text().strip() == digest:
        return True
    if not _self_consistent(data):
        return False
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(digest + "\n")
    os.replace(tmp, seal)  # whole or not at all, as the graph itself
    return True


def load_graph(cache_dir: Path, dat: Path | None = None) -> bytes:
    """The serialized graph, built from ``dat`` on first use and cached under ``cache_dir`` (named after the .dat's
    SHA-256, so new weights build a new graph). A cached file that fails its check is rebuilt, with a warning."""
    dat = dat or dat_path()
    for _ in range(2):
        path = runtime.cached_model(cache_dir, NAME, [dat], lambda: build(dat))
        data = path.read_bytes()
        if _checked(path, data):
            return data
        log.get_logger(__name__).warning("cached graph failed its check; rebuilding it", path=str(path))
        path.unlink(missing_ok=True)
    raise ConfigurationError(f"the graph built from {dat} fails its own check in {cache_dir}")
