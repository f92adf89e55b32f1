"""Face engine 2 on the real models: dlib's network on ONNX Runtime gives dlib-bin's vectors, its graph is cached
and checked, batches change nothing, faces are found in any orientation, and ``analyze_many`` keeps its contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from likeness.analyze import Pipeline, dlib_onnx
from likeness.analyze.faces import DlibEngine, OnnxEngine, make_engine
from likeness.analyze.nsfw import NudeNetScorer
from likeness.analyze.types import Analysis, Face
from likeness.errors import AnalysisFailed, ConfigurationError, LikenessError, MediaError
from likeness.media import Media
from likeness.settings import FaceSettings, RuntimeSettings, Settings
from tests import images
from tests.conftest import EVAL_DATA, needs_eval_data

AGREE = 1e-5  # max abs difference between unit vectors of the two runtimes


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def face_settings(home: Path) -> Settings:
    return Settings(home=home, analyzers=["prefilter", "faces"], faces=FaceSettings(engine="onnx", batch_size=4))


@pytest.fixture(scope="module")
def onnx_engine(face_settings: Settings) -> OnnxEngine:
    return OnnxEngine(face_settings.faces, RuntimeSettings(threads=1), face_settings.home / "models")


@pytest.fixture(scope="module")
def dlib_engine(face_settings: Settings) -> DlibEngine:
    return DlibEngine(face_settings.faces)


@pytest.fixture(scope="module")
def pipeline(face_settings: Settings) -> Pipeline:
    return Pipeline(face_settings)


def _package_pictures() -> list[np.ndarray]:
    astronaut, hopper, crop = images.astronaut(), images.grace_hopper(), images.astronaut_face_crop()
    return [astronaut, hopper, crop, images.resize(hopper, 0.5), images.resize(crop, 1.7), hopper[40:520, 60:460]]


def _chips(engine: OnnxEngine, pictures: list[np.ndarray]) -> list[np.ndarray]:
    return [face.chip for pixels in pictures for face in engine.align(pixels)]


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape and a.shape[1] == 128
    return float(np.abs(a - b).max())


def test_onnx_and_dlib_agree_on_package_pictures(onnx_engine: OnnxEngine, dlib_engine: DlibEngine) -> None:
    chips = _chips(onnx_engine, _package_pictures())
    assert len(chips) >= 6
    ours, theirs = onnx_engine.embed(chips), dlib_engine.embed(chips)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    assert _max_diff(ours, theirs) < AGREE
    assert float(ours[0] @ ours[2]) < 0.9  # the astronaut and Grace Hopper stay apart: not a constant output


@needs_eval_data()
def test_onnx_and_dlib_agree_on_eval_faces(onnx_engine: OnnxEngine, dlib_engine: DlibEngine) -> None:
    """24 real faces (dlib-bin costs ~0.1 s each): faceapi's 150 px crops as they are, then the faces of the first
    photo of the other identities in turn (at most 400 px, to keep detection cheap)."""
    people = sorted(d for d in (EVAL_DATA / "faces").iterdir() if d.is_dir())
    crops = [_rgb(p) for d in people if d.name.startswith("faceapi-") for p in sorted(d.glob("*.*"))[:2]]
    chips = [c for c in crops if c.shape == (150, 150, 3)]
    for person in (d for d in people if not d.name.startswith("faceapi-")):
        chips += _chips(onnx_engine, [_rgb(sorted(person.glob("*.*"))[0], 400)])
        if len(chips) >= 24:
            break
    assert len(chips) >= 24
    assert _max_diff(onnx_engine.embed(chips), dlib_engine.embed(chips)) < AGREE


def _rgb(path: Path, max_side: int = 0) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    if max_side:
        img.thumbnail((max_side, max_side))
    return np.asarray(img)


def test_graph_is_built_once_named_after_the_weights_and_rebuilt_when_damaged(
    onnx_engine: OnnxEngine, home: Path, tmp_path: Path
) -> None:
    models = home / "models"
    [graph] = models.glob("*.onnx")  # the engine fixture built it once
    assert graph.name.startswith(dlib_onnx.NAME + "-")
    built, stamp = graph.read_bytes(), graph.stat().st_mtime_ns
    assert dlib_onnx.load_graph(models) == built and graph.stat().st_mtime_ns == stamp  # used as it is

    damaged = bytearray(built)
    damaged[len(built) // 2 : len(built) // 2 + 64] = bytes(64)  # zeroed weights: still parses as a graph
    graph.write_bytes(bytes(damaged))
    assert dlib_onnx.load_graph(models) == built  # not used: rebuilt
    graph.write_bytes(built[: len(built) // 3])
    assert dlib_onnx.load_graph(models) == built
    assert graph.read_bytes() == built and [p.name for p in models.glob("*.onnx")] == [graph.name]

    other = tmp_path / "weights.dat"  # new weights (one float changed) build a graph of their own
    data = bytearray(dlib_onnx.dat_path().read_bytes())
    data[len(data) // 2] ^= 0x01
    other.write_bytes(bytes(data))
    rebuilt = dlib_onnx.load_graph(models, other)
    assert rebuilt != built and len(list(models.glob("*.onnx"))) == 2


def test_batches_give_the_same_vectors_as_one_by_one(onnx_engine: OnnxEngine, pipeline: Pipeline) -> None:
    chips = _chips(onnx_engine, _package_pictures())
    together = onnx_engine.embed(chips)  # batch_size 4: full and partial batches
    alone = np.concatenate([onnx_engine.embed([chip]) for chip in chips])
    assert _max_diff(together, alone) < 1e-6

    files = [images.encode(p) for p in _package_pictures()]
    many = pipeline.analyze_many(files)
    for data, result in zip(files, many, strict=True):
        assert isinstance(result, Analysis)
        single = pipeline.analyze(data).faces
        assert [f.box for f in result.faces] == [f.box for f in single] and single
        assert _max_diff(np.stack([f.embedding for f in result.faces]), np.stack([f.embedding for f in single])) < 1e-6


def _bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _expected_in_turned(face: Face, shape: tuple[int, ...], turns: int) -> tuple[tuple[int, int, int, int], list]:
    """Where the upright face's box and landmarks are in np.rot90(picture, turns): marked pixels, turned."""
    x, y, w, h = face.box
    box = np.zeros(shape[:2], bool)
    box[y : y + h, x : x + w] = True
    points = []
    for px, py in face.landmarks:
        mark = np.zeros(shape[:2], bool)
        mark[py, px] = True
        points.append(_bounds(np.rot90(mark, turns))[:2])
    return _bounds(np.rot90(box, turns)), points


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_turned_copy_without_exif_yields_the_face_in_its_own_coordinates(
    pipeline: Pipeline, face_settings: Settings, turns: int
) -> None:
    picture = images.astronaut_face_crop()
    [upright] = pipeline.analyze(images.encode(picture)).faces
    turned = np.ascontiguousarray(np.rot90(picture, turns))
    result = pipeline.analyze(images.encode(turned))  # JPEG without any EXIF orientation tag
    [face] = result.faces
    box, landmarks = _expected_in_turned(upright, picture.shape, turns)
    assert np.abs(np.subtract(face.box, box)).max() <= 3, (face.box, box)
    assert np.abs(np.subtract(face.landmarks, landmarks)).max() <= 3
    assert float(face.embedding @ upright.embedding) > 0.97
    assert any("faces found with the picture turned" in w for w in result.warnings)

    no_turns = face_settings.model_copy(update={"faces": face_settings.faces.model_copy(update={"rotations": False})})
    assert Pipeline(no_turns).analyze(images.encode(turned)).faces == []  # the setting turns the retry off


def test_upright_and_faceless_pictures_carry_no_turn_note(pipeline: Pipeline) -> None:
    upright = pipeline.analyze(images.encode(images.astronaut_face_crop()))
    faceless = pipeline.analyze(images.encode(images.NO_FACE["coffee"]()))
    assert upright.faces and faceless.faces == []
    assert not [w for w in upright.warnings + faceless.warnings if "turned" in w]


class _Fails:
    """An analyser after ``faces`` that fails on pictures of one width: a bug hitting one file of a batch."""

    name = "fails"

    def __init__(self, width: int, error: type[BaseException]) -> None:
        self.width, self.error = width, error

    def __call__(self, media: Media, result: Analysis) -> None:
        if media.width == self.width:
            raise self.error("odd pixels")


def test_analyze_many_keeps_order_and_per_item_errors(face_settings: Settings) -> None:
    pipeline = Pipeline(face_settings)
    pipeline.analyzers.append(_Fails(width=600, error=RuntimeError))  # coffee is 600 px wide
    files = [
        images.encode(images.astronaut_face_crop()),
        images.truncated_jpeg(),
        images.encode(images.NO_FACE["coffee"]()),
        b"not a picture at all",
        images.encode(images.grace_hopper()),
    ]
    calls: list[int] = []
    results = pipeline.analyze_many(files, calls.append)
    assert calls == [0, 1, 2, 3, 4, -1]
    first, truncated, coffee, garbage, hopper = results
    assert isinstance(first, Analysis) and len(first.faces) == 1 and first.width == 230
    assert isinstance(truncated, MediaError) and isinstance(garbage, MediaError)
    assert isinstance(coffee, AnalysisFailed) and str(coffee) == "RuntimeError: odd pixels"
    assert isinstance(hopper, Analysis) and len(hopper.faces) == 1 and hopper.width == 512
    assert not any(isinstance(r, LikenessError) for r in pipeline.analyze_many([files[0], files[4]]))

    pipeline.analyzers[-1] = _Fails(width=600, error=MemoryError)
    with pytest.raises(MemoryError):  # the worker turns it into a budget error for the file it was on
        pipeline.analyze_many(files)


def test_empty_batch_and_no_faces_still_report_the_embedding_step(pipeline: Pipeline) -> None:
    calls: list[int] = []
    assert pipeline.analyze_many([], calls.append) == [] and calls == [-1]
    [result] = pipeline.analyze_many([images.encode(images.NO_FACE["brick"]())], calls.append)
    assert isinstance(result, Analysis) and result.faces == [] and calls == [-1, 0, -1]


def test_unknown_names_are_configuration_errors(face_settings: Settings) -> None:
    for update in ({"engine": "nope"}, {"detector": "nope"}):
        bad = face_settings.model_copy(update={"faces": face_settings.faces.model_copy(update=update)})
        with pytest.raises(ConfigurationError, match="nope"):
            make_engine(bad)
    with pytest.raises(ConfigurationError, match="device 'tpu'"):
        make_engine(face_settings.model_copy(update={"runtime": RuntimeSettings(device="tpu")}))


def test_every_network_takes_its_threads_from_the_runtime_settings(onnx_engine: OnnxEngine) -> None:
    nsfw = NudeNetScorer(RuntimeSettings(threads=1))
    for session in (nsfw.session, onnx_engine._session):
        assert session.get_session_options().intra_op_num_threads == 1


def test_scan_workers_run_every_network_on_one_thread(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """One worker per core: a worker whose networks used every core would oversubscribe them (2.2x slower scans
    measured here before this was enforced)."""
    from likeness.analyze import runtime
    from likeness.services import workers

    asked: list[int] = []
    real = runtime.session

    def session(model: Path | bytes, threads: int, device: str = "cpu") -> object:
        asked.append(threads)
        return real(model, threads, device)

    monkeypatch.setattr(runtime, "session", session)
    workers.init(Settings(home=home))
    assert len(asked) >= 5 and set(asked) == {1}  # MTCNN's three, dlib's ResNet, NudeNet
