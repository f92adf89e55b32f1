"""Scanning a folder end to end on the real database and models."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from likeness.services import scan
from likeness.services.app import App
from likeness.store.models import Face, Media, Sighting
from tests import images


def _hostile_folder(root: Path) -> dict[str, str]:
    """name -> the error kind each file must end as."""
    files = {
        "zero.jpg": (b"", "empty"),
        "truncated.jpg": (images.truncated_jpeg(), "corrupt"),
        "text.jpg": (b"hello, I am text\n", "unsupported_format"),
        "bomb.png": (images.png_bomb(), "too_large"),
        "frames.gif": (images.many_frame_gif(), "too_many_frames"),
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, (body, _) in files.items():
        (root / name).write_bytes(body)
    (root / "bad_orientation.jpg").write_bytes(images.with_orientation(images.astronaut_face_crop(), 9))
    return {name: kind for name, (_, kind) in files.items()}


def test_hostile_files_are_recorded_and_the_scan_completes(app: App, tmp_path: Path) -> None:
    expected = _hostile_folder(tmp_path / "in")
    summary = scan.scan(app, [str(tmp_path / "in")], actor="test")
    assert summary.files == 6
    assert {Path(e.location).name: e.kind for e in summary.errors} == expected
    assert all(e.recorded and e.message for e in summary.errors)
    with app.store.transaction() as session:
        failed = session.execute(select(Media.error_kind, Media.error_message).where(Media.status == "failed")).all()
        oriented = session.scalars(select(Media).where(Media.status == "analyzed")).one()
    assert sorted(k for k, _ in failed) == sorted(expected.values())
    assert all(message for _, message in failed)
    assert any("orientation 9" in w for w in oriented.warnings)  # analysed as stored, with a note


def test_rescan_does_no_analysis_work_and_records_new_locations(app: App, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    images.write(folder / "a.jpg", images.astronaut())
    images.write(folder / "b.jpg", images.NO_FACE["coffee"]())
    (folder / "copy_of_a.jpg").write_bytes((folder / "a.jpg").read_bytes())
    first = scan.scan(app, [str(folder)], actor="test")
    assert (first.analyzed, first.duplicates_in_scan) == (2, 1)
    (folder / "moved_a.jpg").write_bytes((folder / "a.jpg").read_bytes())
    second = scan.scan(app, [str(folder)], actor="test")
    assert (second.analyzed, second.already_known, second.files) == (0, 4, 4)
    with app.store.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Media)) == 2
        assert session.scalar(select(func.count()).select_from(Sighting)) == 4
        assert session.scalar(select(func.count()).select_from(Face)) == 1  # the astronaut (MTCNN: not the helmet)


def test_cli_scan_json_summary_and_bounded_memory(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Run as people do: a subprocess. Peak memory of the scan and its workers stays bounded on hostile input."""
    _hostile_folder(tmp_path / "in")
    images.write(tmp_path / "in" / "big.jpg", images.resize(images.astronaut(), 6.0), quality=90)  # 3072 px
    code = "import sys; from likeness.cli.main import app; sys.exit(app())"
    proc = subprocess.run(
        [sys.executable, "-c", code, "scan", "--json", str(tmp_path / "in")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr  # the hostile files failed, and the exit code says so
    summary = json.loads(proc.stdout)
    assert summary["files"] == 7 and summary["analyzed"] == 2 and len(summary["errors"]) == 5
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    assert peak_mib < 1500, f"peak RSS {peak_mib:.0f} MiB"


def test_near_duplicates_are_grouped_and_still_analysed(app: App, tmp_path: Path) -> None:
    from likeness.services import corpus

    made = corpus.build(tmp_path / "c")
    summary = scan.scan(app, [str(made.scan_dir)], actor="test")
    with app.store.transaction() as session:
        rows = session.execute(select(Sighting.location, Media.id, Media.canonical_id).join(Media)).all()
        faces = dict(session.execute(select(Face.media_id, func.count()).group_by(Face.media_id)).all())
    group = {Path(loc).name: canonical or media_id for loc, media_id, canonical in rows}
    copies = ["full_photo.jpg", "half_size.jpg", "low_quality.jpg", "rotated_exif.jpg", "greyscale.jpg"]
    assert len({group[name] for name in copies}) == 1  # resized, re-encoded, EXIF-rotated, grey: one picture
    assert group["grace_hopper.jpg"] == group["grace_hopper_small.png"]  # a 60% resize: the second group
    grouped = {*copies, "grace_hopper.jpg", "grace_hopper_small.png"}
    singles = [group[name] for name in group if name not in grouped]
    assert len(set(singles)) == len(singles) and not {group["full_photo.jpg"], group["grace_hopper.jpg"]} & set(singles)
    assert summary.near_duplicates == (len(copies) - 1) + 1
    assert all(faces.get(media_id) for loc, media_id, _ in rows if Path(loc).name in copies)
