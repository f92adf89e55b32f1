"""SIGKILL a scan midway, run it again: every file is catalogued exactly once, with no orphan faces or matches."""

from __future__ import annotations

from pathlib import Path

from likeness.services import corpus, scan
from likeness.services.app import App
from tests import images
from tests.conftest import kill_cli_when, scalar
from tests.images import photos


def _corpus(root: Path) -> int:
    made = corpus.build(root)
    for i in range(12):  # more distinct faces so the kill lands mid-scan
        images.write(
            root / "scan" / "extra" / f"astro_{i}.jpg",
            images.resize(images.astronaut(), 0.6 + i * 0.05),
            quality=60 + i * 2,
        )
    return sum(1 for p in made.scan_dir.rglob("*") if p.is_file())


def test_sigkill_midway_then_resume(app: App, cli_env: dict[str, str], tmp_path: Path) -> None:
    files = _corpus(tmp_path / "c")
    from likeness.services import subjects

    subjects.enroll(app, "Eileen", photos([tmp_path / "c" / "reference" / "eileen_collins.jpg"]), actor="test")
    url = str(app.settings.database_url)
    kill_cli_when(["scan", str(tmp_path / "c" / "scan")], cli_env, url, "SELECT count(*) FROM media", 5)
    partial = scalar(url, "SELECT count(*) FROM media")
    assert 5 <= partial < files - 3

    summary = scan.scan(app, [str(tmp_path / "c" / "scan")], actor="test")
    assert summary.already_known == partial
    assert summary.files == files
    distinct = len({p.read_bytes() for p in (tmp_path / "c" / "scan").rglob("*") if p.is_file()})
    assert scalar(url, "SELECT count(*) FROM media") == distinct
    assert scalar(url, "SELECT count(*) FROM (SELECT sha256 FROM media GROUP BY sha256 HAVING count(*) > 1) d") == 0
    assert scalar(url, "SELECT count(*) FROM sightings") == files
    assert scalar(url, "SELECT count(*) FROM faces f LEFT JOIN media m ON m.id = f.media_id WHERE m.id IS NULL") == 0
    assert (
        scalar(url, "SELECT count(*) FROM (SELECT media_id, idx FROM faces GROUP BY 1, 2 HAVING count(*) > 1) d") == 0
    )
    assert (
        scalar(url, "SELECT count(*) FROM matches WHERE face_id IS NOT NULL AND face_id NOT IN (SELECT id FROM faces)")
        == 0
    )
    # every subject copy (8 in the corpus + 12 extra) is matched exactly once
    assert scalar(url, "SELECT count(*) FROM matches WHERE kind = 'face'") == 20
