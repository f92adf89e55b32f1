"""vPDQ: features as Meta's vpdq computes them, its file format, its video-level rule, and later frames of
catalogued videos searched when a hash is protected afterwards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from likeness.analyze import vpdq
from likeness.errors import LikenessError
from likeness.services import hashes, review, scan
from likeness.services.app import App
from likeness.settings import MediaLimits
from tests import images
from tests.images import photos


def _shots(fps: int) -> bytes:
    parts = [images.NO_FACE["coffee"](), images.astronaut(), images.grace_hopper(), images.NO_FACE["rocket"]()]
    return images.video([p for p in parts for _ in range(2 * fps)], fps=fps)


@pytest.mark.parametrize("fps", [10, 24])
def test_features_are_those_of_metas_vpdq(tmp_path: Path, fps: int) -> None:
    reference = pytest.importorskip("vpdq", reason="the vpdq package (pip install '.[vpdq]', needs libav*-dev)")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(_shots(fps))
    theirs = reference.computeHash(str(clip))
    ours = vpdq.hash_video(clip.read_bytes(), MediaLimits())
    assert [(f.frame, f.quality) for f in ours] == [(t.frame_number, t.quality) for t in theirs]
    assert [f.time_s for f in ours] == pytest.approx([t.timestamp for t in theirs], abs=1e-3)
    # PyAV and vpdq share FFmpeg's decoder and RGB conversion: identical on this machine; a few bits allowed for
    # another FFmpeg build
    distances = [bin(int(t.hex, 16) ^ int(f.digest.hex(), 16)).count("1") for f, t in zip(ours, theirs, strict=True)]
    assert max(distances) <= 4, distances


def test_features_are_one_per_second_from_frame_zero() -> None:
    features = vpdq.hash_video(_shots(10), MediaLimits())
    assert [f.frame for f in features] == list(range(0, 80, 10))
    assert [f.time_s for f in features] == pytest.approx(list(range(8)))
    assert len({f.digest for f in features}) == 4  # two seconds per shot


def test_file_format_round_trips_and_reports_bad_lines() -> None:
    features = vpdq.hash_video(_shots(10), MediaLimits())
    assert vpdq.loads(vpdq.dumps(features)) == features
    assert vpdq.dumps(features).splitlines()[1] == f"10,{features[1].quality},{features[1].digest.hex()},1.000"
    with pytest.raises(LikenessError) as err:
        vpdq.loads("0,100," + "ab" * 32 + ",0.000\n1,100,abc,1.0\nnot a line\n")
    assert "line 2: a hash is 64 hex digits, got 3" in str(err.value)
    assert "line 3: expected frame,quality,hash,timestamp" in str(err.value)


def test_match_percent_is_the_share_of_each_side_found_in_the_other() -> None:
    rng = np.random.default_rng(7)
    a, b, c = (rng.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(3))
    near_a = bytes([a[0] ^ 0b111, *a[1:]])  # 3 bits away
    assert vpdq.match_percent([a, b], [near_a], 31) == (50.0, 100.0)
    assert vpdq.match_percent([a, b, c], [near_a, b], 31) == pytest.approx((66.67, 100.0), abs=0.01)
    assert vpdq.match_percent([a], [near_a], 2) == (0.0, 0.0)
    assert vpdq.match_percent([], [a], 31) == (0.0, 0.0)
    low = [vpdq.Feature(0, 10, a, 0.0), vpdq.Feature(1, 90, b, 1.0)]
    assert vpdq.usable(low, 50) == [b]


def test_vpdq_file_imports_as_one_submission_and_exports_back(app: App, tmp_path: Path) -> None:
    features = vpdq.hash_video(_shots(10), MediaLimits())
    path = tmp_path / "leak.vpdq"
    path.write_text(vpdq.dumps(features))
    imported = hashes.import_list(app, "ncii", path.read_text(), "vpdq", actor="test", name=path.name)
    assert imported == (4, 0, 0)  # 8 features, 4 distinct hashes
    exported = vpdq.loads(hashes.export_list(app, "ncii", "vpdq", submission="vpdq:leak.vpdq"))
    assert exported == [f for f in features if f.frame in (0, 20, 40, 60)]  # each hash at its first frame
    with pytest.raises(LikenessError, match="name its submission"):
        hashes.export_list(app, "ncii", "vpdq")
    bad = tmp_path / "bad.vpdq"
    bad.write_text("0,100,zz,0.0\n")
    with pytest.raises(LikenessError, match="line 1"):
        hashes.import_list(app, "ncii", bad.read_text(), "vpdq", actor="test", name=bad.name)
    assert len(hashes.export_list(app, "ncii", "text").splitlines()) == 4  # nothing from the bad file


def test_a_hash_protected_later_is_found_in_a_later_frame_of_a_catalogued_video(app: App, tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    shown = images.resize(images.NO_FACE["chelsea"](), 0.7)
    clip = images.video([images.NO_FACE["coffee"]()] * 15 + [shown] * 15, fps=5, bitrate=300_000)
    (tmp_path / "v" / "repost.mp4").write_bytes(clip)
    scan.scan(app, [str(tmp_path / "v")], actor="test")
    protected = images.write(tmp_path / "private.png", images.NO_FACE["chelsea"](), "PNG")
    [added] = hashes.add_files(app, "ncii", photos([protected]), actor="test")
    assert added.catalogue_matches == 1
    [summary] = review.media_summary(app)
    assert summary.banks == ["ncii"] and summary.frames[0] >= 15  # the cut is at 3 s (frame 15)
