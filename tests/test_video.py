"""Videos and animations: frames sampled with limits, faces reported once per person, every frame's PDQ
checked against the banks. Clips are encoded here with PyAV from package-shipped pictures."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from likeness.errors import TooLarge
from likeness.media import decode
from likeness.services import corpus, hashes, review, scan, subjects
from likeness.services.app import App
from likeness.settings import MediaLimits
from likeness.store.models import Face, Media
from tests import images
from tests.images import photos


def _clip(*parts: tuple[object, int], **kw: object) -> bytes:
    """Concatenate (picture, seconds) parts at 5 fps."""
    frames = [pixels for pixels, seconds in parts for _ in range(5 * seconds)]  # type: ignore[misc]
    return images.video(frames, fps=5, **kw)  # type: ignore[arg-type]


def test_sampling_keeps_first_every_second_and_last_and_skips_stills() -> None:
    coffee, face = images.NO_FACE["coffee"](), images.astronaut_face_crop()
    media = decode(_clip((coffee, 3), (face, 3)), MediaLimits())
    assert media.format == "mp4" and media.frame_count == 30 and media.duration_s == pytest.approx(6.0, abs=0.3)
    kept = [f.index for f in media.frames]
    assert kept[0] == 0 and 15 in kept  # first frame; the cut to the face shot is sampled (at 3 s)
    assert len(kept) <= 4, kept  # two still shots: near-identical frames are skipped


def test_ten_hour_video_is_refused_and_frame_cap_warns() -> None:
    with pytest.raises(TooLarge, match="36001 s long; the limit is 7200 s"):
        decode(images.ten_hour_video(), MediaLimits())
    capped = decode(_clip((images.astronaut(), 4)), MediaLimits(max_video_frames=12))
    assert any("stopped after 12 frames" in w for w in capped.warnings)


@pytest.mark.parametrize(
    ("fmt", "codec", "suffix"), [("mp4", "libx264", "mp4"), ("webm", "libvpx-vp9", "webm"), ("mov", "mpeg4", "mov")]
)
def test_subject_in_a_video_is_matched_once(app: App, tmp_path: Path, fmt: str, codec: str, suffix: str) -> None:
    made = corpus.build(tmp_path / "c")
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    clip = tmp_path / f"clip.{suffix}"
    clip.write_bytes(_clip((images.NO_FACE["rocket"](), 2), (images.astronaut_face_crop(), 3), fmt=fmt, codec=codec))
    summary = scan.scan(app, [str(clip)], actor="test")
    assert summary.errors == [] and summary.face_matches == 1
    with app.store.transaction() as session:
        faces = session.scalars(select(Face)).all()
        assert session.scalar(select(Media.frame_count)) == 25
    real = [f for f in faces if f.frame >= 10]  # the face shot starts at frame 10
    assert len(real) == 1  # seen in every sampled frame of the shot, reported once
    [row] = [r for r in review.list_matches(app, limit=None) if r.kind == "face"]
    assert row.frame == real[0].frame


def test_protected_image_shown_in_a_reencoded_video_matches(app: App, tmp_path: Path) -> None:
    made = corpus.build(tmp_path / "c")
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    shown = images.resize(images.NO_FACE["chelsea"](), 0.6)
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "repost.mp4").write_bytes(_clip((images.NO_FACE["coffee"](), 2), (shown, 2), bitrate=200_000))
    (tmp_path / "v" / "unrelated.mp4").write_bytes(
        _clip((images.NO_FACE["coffee"](), 2), (images.NO_FACE["rocket"](), 2))
    )
    scan.scan(app, [str(tmp_path / "v")], actor="test")
    assert [Path(r.location).name for r in review.list_matches(app, limit=None) if r.kind == "hash"] == ["repost.mp4"]


def test_animated_gif_frames_are_analysed(app: App, tmp_path: Path) -> None:
    made = corpus.build(tmp_path / "c")
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    gif = tmp_path / "anim.gif"
    gif.write_bytes(images.animated_gif([images.NO_FACE["coffee"](), images.astronaut_face_crop()], duration_ms=1000))
    summary = scan.scan(app, [str(gif)], actor="test")
    assert summary.face_matches == 1
    with app.store.transaction() as session:
        assert session.scalar(select(func.max(Face.frame))) == 1


def test_protected_video_matches_its_reencoded_copy_and_withdraws_as_one(app: App, tmp_path: Path) -> None:
    content = ((images.NO_FACE["chelsea"](), 2), (images.NO_FACE["rocket"](), 2), (images.grace_hopper(), 2))
    original = tmp_path / "private.mp4"
    original.write_bytes(_clip(*content))
    added = hashes.add_files(app, "ncii", photos([original]), actor="test")
    stored = {a.hash_id for a in added if a.hash_id}
    assert len(stored) == 3 and len(added) == 6  # vPDQ: a feature per second; repeated stills are one hash
    assert "#frame5" in added[1].file
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "copy.webm").write_bytes(_clip(*content, fmt="webm", codec="libvpx-vp9", bitrate=150_000))
    (tmp_path / "v" / "other.mp4").write_bytes(_clip((images.NO_FACE["coffee"](), 2), (images.astronaut(), 2)))
    longer = (images.NO_FACE["coffee"](), 2), (images.NO_FACE["hubble"](), 2), (images.astronaut(), 2), *content
    (tmp_path / "v" / "compilation.mp4").write_bytes(_clip(*longer))
    scan.scan(app, [str(tmp_path / "v")], actor="test")
    summaries = {Path(s.location).name: s for s in review.media_summary(app)}
    assert set(summaries) == {"copy.webm", "compilation.mp4"}
    [copy_verdict] = summaries["copy.webm"].video_matches
    assert copy_verdict == {
        "submission": "video:private.mp4",
        "query_percent": 100.0,
        "target_percent": 100.0,
        "video_match": True,
    }
    assert summaries["copy.webm"].banks == ["ncii"] and len(summaries["copy.webm"].frames) == 3
    # the protected video inside a longer one: every protected frame is found, but it is half the video
    [inside] = summaries["compilation.mp4"].video_matches
    assert inside["target_percent"] == 100.0 and inside["query_percent"] < 80 and not inside["video_match"]
    assert min(summaries["compilation.mp4"].frames) >= 25  # the protected part starts at 6 s (frame 30)
    assert hashes.withdraw(app, actor="test", submission="video:private.mp4") == len(stored)
    assert review.list_matches(app, limit=None) == []
