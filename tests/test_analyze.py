"""Analysers on real pixels with the real models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import PngImagePlugin

from likeness.analyze import Pipeline, pdq
from likeness.analyze.nsfw import NudeNetScorer
from likeness.analyze.pdq_index import as_words, hamming
from likeness.analyze.plugins import available
from likeness.analyze.provenance import detect
from likeness.errors import ConfigurationError
from likeness.settings import RuntimeSettings, Settings
from tests import images


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(Settings())


def test_face_is_found_embedded_and_named(pipeline: Pipeline) -> None:
    result = pipeline.analyze(images.encode(images.astronaut_face_crop()))
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.engine == "onnx" and face.model == "dlib_face_recognition_resnet_model_v1"
    assert face.embedding.shape == (128,)
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    x, y, w, _ = face.box
    assert 40 <= x <= 90 and 40 <= y <= 80 and 60 <= w <= 120  # the astronaut's face in the crop
    assert len(face.landmarks) == 5
    assert 0 < face.quality <= 1


def test_no_face_picture_has_no_faces_and_no_nsfw_score(pipeline: Pipeline) -> None:
    result = pipeline.analyze(images.encode(images.NO_FACE["coffee"]()))
    assert result.faces == []
    assert result.nsfw is None  # NSFW runs only where there is a face, by default
    assert result.pdq is not None and result.pdq_quality is not None and result.pdq_quality >= 50


def test_nsfw_scores_a_clothed_portrait_low(pipeline: Pipeline) -> None:
    result = pipeline.analyze(images.encode(images.grace_hopper()))
    assert result.nsfw is not None and result.nsfw < 0.3


def test_nsfw_detections_are_nudenets_own() -> None:
    """Our vectorised pre- and post-processing around NudeNet's weights give exactly what NudeNet's detect gives
    (classes, scores and boxes), on pictures with and without people (coffee shows a false "buttocks" box)."""
    from nudenet import NudeDetector

    ours, reference = NudeNetScorer(RuntimeSettings(threads=1)), NudeDetector()
    pictures = [images.astronaut(), images.grace_hopper(), *(make() for make in images.NO_FACE.values())]
    found = 0
    for pixels in (np.ascontiguousarray(np.dstack([p] * 3) if p.ndim == 2 else p[..., :3]) for p in pictures):
        rgba = np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])  # what NudeNet's detect is given
        expected = [(d["class"], d["score"], d["box"]) for d in reference.detect(rgba)]
        assert ours.detections(pixels) == expected
        found += len(expected)
    assert found >= 3


def test_boxes_are_in_original_pixels_when_analysis_downscales() -> None:
    big = images.encode(images.resize(images.astronaut_face_crop(), 4.0))
    small = Pipeline(Settings(media={"analysis_max_side": 500})).analyze(big)
    assert small.width == 920
    x, _, w, _ = small.faces[0].box
    assert 160 <= x <= 360 and 240 <= w <= 480


def test_prefilter_skips_tiny_and_blank(pipeline: Pipeline) -> None:
    tiny = pipeline.analyze(images.encode(images.astronaut()[:20, :20], "PNG"))
    blank = pipeline.analyze(images.encode(np.full((300, 300, 3), 128, np.uint8), "PNG"))
    assert tiny.skipped and tiny.skipped.startswith("too_small")
    assert blank.skipped and blank.skipped.startswith("blank")
    assert blank.pdq is None and blank.faces == []


def test_pdq_survives_reencoding_and_separates_different_pictures() -> None:
    original, _ = pdq(images.astronaut())
    reencoded, _ = pdq(np.asarray(images.resize(images.astronaut(), 0.5)))
    other, _ = pdq(images.NO_FACE["coffee"]())
    table = as_words([original])
    assert hamming(table, as_words([reencoded])[0])[0] <= 31
    assert hamming(table, as_words([other])[0])[0] > 31
    assert len(original) == 32


def test_provenance_from_png_text_chunk_and_exif_software(pipeline: Pipeline) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a portrait, Steps: 20, Sampler: Euler a, Model: sdxl")
    result = pipeline.analyze(images.encode(images.astronaut_face_crop(), "PNG", pnginfo=info))
    assert result.provenance["generator"] == "stable-diffusion-webui"
    assert "Steps: 20" in result.provenance["png:parameters"]
    assert detect({"exif_software": "Adobe Firefly 2"})["generator"] == "Adobe Firefly 2"
    assert detect({"xmp": '<x xmp:CreatorTool="Midjourney v6"/>'})["xmp:CreatorTool"] == "Midjourney v6"
    assert detect({"exif_software": "GIMP 2.10"}) == {}


def test_analysers_are_plugins_chosen_in_settings() -> None:
    assert {"prefilter", "pdq", "faces", "nsfw", "provenance"} <= set(available())
    only_pdq = Pipeline(Settings(analyzers=["pdq"])).analyze(images.encode(images.astronaut()))
    assert only_pdq.faces == [] and only_pdq.pdq is not None
    with pytest.raises(ConfigurationError, match="unknown analysers"):
        Pipeline(Settings(analyzers=["nope"]))


def test_face_engine_accepts_strided_pixels(pipeline: Pipeline) -> None:
    """Video frames and crops arrive as non-contiguous views; the engine must not refuse them."""
    from likeness.analyze.faces import DlibEngine

    padded = np.zeros((300, 264, 3), np.uint8)
    padded[:260, :230] = images.astronaut_face_crop()
    view = padded[:, :230]
    assert not view.flags.c_contiguous
    assert len(DlibEngine(Settings().faces).faces(view)) == 1
