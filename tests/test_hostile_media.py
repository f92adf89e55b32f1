"""The hostile corpus (tests/hostile.py) through ``media.decode`` and the pipeline: every file ends as its expected
error kind or a normal decode, quickly and within a small memory peak, and no text leaves media or analysis that
PostgreSQL would refuse."""

from __future__ import annotations

import ctypes
import io
import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from likeness.analyze.pipeline import Pipeline
from likeness.analyze.provenance import detect
from likeness.errors import MediaError
from likeness.media import SNIFF_BYTES, decode, sniff
from likeness.media.frames import sample_animation
from likeness.settings import MediaLimits, Settings
from tests import hostile

pytestmark = pytest.mark.timeout(120)  # a safety net against a hang; no file may take anywhere near this

LIMITS = MediaLimits()
CORPUS = hostile.corpus()
GROUPS = {
    "png-text",
    "exif-text",
    "exif-orientation",
    "animation",
    "jpeg-scans",
    "video",
    "heif",
    "avif",
    "bomb",
    "tiff-pages",
    "mismatch",
    "empty",
    "truncated",
}
_STATUS = Path("/proc/self/status")
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _outcome(run: Callable[[], object]) -> str:
    try:
        run()
    except MediaError as exc:
        return exc.kind
    return hostile.ANALYZED


def _assert_storable(text: str, limit: int = 20_000) -> None:
    """What PostgreSQL takes in text and jsonb: valid UTF-8 without NUL (and no other control characters)."""
    assert not _UNSTORABLE.search(text), repr(text[:200])
    assert len(text) <= limit
    text.encode("utf-8")  # strict: a lone surrogate would raise


def test_corpus_covers_every_class_and_writes_its_files(tmp_path: Path) -> None:
    written = hostile.corpus(tmp_path)
    assert {f.group for f in written} == GROUPS
    assert all(f.path is not None and f.path.read_bytes() == f.data for f in written)
    assert sum(len(f.data) for f in written) < 8 << 20  # nothing large: the bombs are small files
    expected = {f.expected for f in written}
    assert expected == {"analyzed", "too_large", "too_many_frames", "corrupt", "unsupported_format", "empty"}


@pytest.mark.parametrize("item", CORPUS, ids=[f.name for f in CORPUS])
def test_each_hostile_file_decodes_to_its_expected_outcome(item: hostile.HostileFile) -> None:
    assert _outcome(lambda: decode(item.data, LIMITS)) == item.expected


@pytest.mark.parametrize("item", CORPUS, ids=[f.name for f in CORPUS])
def test_sniffing_the_first_bytes_agrees_with_the_whole_file(item: hostile.HostileFile) -> None:
    """The scan sniffs a file's head to choose media files in a folder."""
    assert _outcome(lambda: sniff(item.data[:SNIFF_BYTES])) == _outcome(lambda: sniff(item.data))


@pytest.mark.parametrize("item", [f for f in CORPUS if f.expected == hostile.ANALYZED], ids=lambda f: f.name)
def test_text_that_leaves_media_is_storable(item: hostile.HostileFile) -> None:
    media = decode(item.data, LIMITS)
    assert len(media.metadata) <= 64
    for key, value in media.metadata.items():
        _assert_storable(key, 200)
        _assert_storable(value)
    for warning in media.warnings:
        _assert_storable(warning, 500)


def test_text_is_cleaned_and_bounded_but_kept() -> None:
    by_name = {f.name: f for f in CORPUS}
    parameters = decode(by_name["png-parameters-1mb"].data, LIMITS).metadata["parameters"]
    assert parameters.startswith("a portrait photo\nSteps: 20") and "after a NUL" in parameters
    assert len(parameters) == 20_000 and parameters.endswith("…")
    assert "\u00e9" in decode(by_name["png-iTXt-nul"].data, LIMITS).metadata["parameters"]
    assert len(decode(by_name["png-5000-text-chunks"].data, LIMITS).metadata) == 64
    exif = decode(by_name["exif-text-jpeg"].data, LIMITS).metadata
    assert exif["exif_software"].startswith("Stable Diffusion") and "\x00" not in exif["exif_software"]
    assert exif["exif_user_comment"].startswith("Steps: 20, Sampler: Euler") and "\ufffd" in exif["exif_user_comment"]


def test_a_text_bomb_loses_the_text_not_the_picture() -> None:
    by_name = {f.name: f for f in CORPUS}
    media = decode(by_name["png-zTXt-bomb-after-image"].data, LIMITS)
    assert "prompt" not in media.metadata and any("MAX_TEXT_CHUNK" in w for w in media.warnings)


def test_provenance_output_is_storable_whatever_metadata_it_is_given() -> None:
    hostile_metadata = {
        "parameters": "a\x00b\ud800c" + "x" * 1_000_000,
        "Software": "Stable Diffusion\x00\udcff",
        "exif_user_comment": "Steps: 30, Sampler: DPM\x00" + "y" * 50_000,
        "xmp": '<rdf:Description xmp:CreatorTool="ComfyUI\x01\ud800"/>',
    }
    found = detect(hostile_metadata)
    assert set(found) == {"generator", "png:parameters", "exif:UserComment", "software", "xmp:CreatorTool"}
    assert found["generator"] == "stable-diffusion-webui"
    for value in found.values():
        _assert_storable(value, 2000)
    assert found["png:parameters"].startswith("ab\ufffdcx")


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(Settings(analyzers=["prefilter", "pdq", "provenance"]))


@pytest.mark.parametrize("item", CORPUS, ids=[f.name for f in CORPUS])
def test_pipeline_ends_each_file_as_decoding_does(pipeline: Pipeline, item: hostile.HostileFile) -> None:
    assert _outcome(lambda: pipeline.analyze(item.data)) == item.expected


@pytest.mark.parametrize("name", ["png-tEXt-nul", "png-zTXt-nul", "png-iTXt-nul", "exif-text-jpeg", "exif-text-webp"])
def test_pipeline_finds_the_generator_and_stores_clean_text(pipeline: Pipeline, name: str) -> None:
    item = next(f for f in CORPUS if f.name == name)
    analysis = pipeline.analyze(item.data)
    assert analysis.provenance["generator"] == "stable-diffusion-webui"
    _assert_storable(json.dumps(analysis.provenance, ensure_ascii=False), 20_000)
    assert analysis.pdq is not None


def test_an_animation_whose_header_lies_stops_before_the_frame_past_the_limit() -> None:
    """The safety net under the declared-size checks: sampling counts what it decodes."""
    img = Image.open(io.BytesIO(hostile.gif_canvas(100, 100, 10)))
    with pytest.raises(MediaError, match=r"frame 3 \(100x100\)") as caught:
        sample_animation(img, MediaLimits(max_animation_pixels=35_000))
    assert caught.value.kind == "too_large"
    with pytest.raises(MediaError, match="more than 4 frames") as many:
        sample_animation(Image.open(io.BytesIO(hostile.gif_canvas(100, 100, 10))), MediaLimits(max_frames=4))
    assert many.value.kind == "too_many_frames"


def _mib(field: str) -> float:
    match = re.search(rf"{field}:\s+(\d+) kB", _STATUS.read_text())
    assert match is not None
    return int(match.group(1)) / 1024


def test_no_hostile_file_costs_much_memory() -> None:
    """The peak resident memory while decoding each file, over what was resident before it (Linux resets the
    peak on writing 5 to clear_refs; glibc's malloc_trim first hands back what earlier files freed, so that it
    cannot hide a new peak). Refused files never allocate their pixels; honest ones are small."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        pytest.skip("needs Linux's /proc/self/clear_refs and glibc to measure a peak per file")
    for warm in ("gif-honest", "mp4-honest", "heif-picture-rotated", "avif-picture-rotated", "tiff-3-pages"):
        decode(next(f for f in CORPUS if f.name == warm).data, LIMITS)  # imports and codec set-up are no file's
    peaks = {}
    for item in CORPUS:
        trim(0)
        before = _mib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")
        _outcome(partial(decode, item.data, LIMITS))
        peaks[item.name] = _mib("VmHWM") - before
    worst = max(peaks, key=lambda name: peaks[name])
    # decoding the 4000x4000 canvas of one animation costs ~130 MiB, a 9000x9000 bomb ~250 MiB
    assert peaks[worst] < 64, f"{worst} peaked at {peaks[worst]:.0f} MiB"
