"""SIGKILL a scan midway, run it again: every file is catalogued exactly once, with no orphan faces or matches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from likeness.services import corpus, scan
from likeness.services.app import App
from tests import images


def _corpus(root: Path) -> int:
    made = corpus.build(root)
    for i in range(12):  # more distinct faces so the kill lands mid-scan
        images.write(
            root / "scan" / "extra" / f"astro_{i}.jpg",
            images.resize(images.astronaut(), 0.6 + i * 0.05),
            quality=60 + i * 2,
        )
    return sum(1 for p in made.scan_dir.rglob("*") if p.is_file())


def _count(url: str, sql: str) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        value = int(conn.execute(text(sql)).scalar_one())
    engine.dispose()
    return value


def test_sigkill_midway_then_resume(app: App, cli_env: dict[str, str], tmp_path: Path) -> None:
    files = _corpus(tmp_path / "c")
    from likeness.services import subjects

    subjects.enroll(app, "Eileen", [tmp_path / "c" / "reference" / "eileen_collins.jpg"])
    url = str(app.settings.database_url)
    code = "import sys; from likeness.cli.main import app; sys.exit(app())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "scan", str(tmp_path / "c" / "scan")],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while _count(url, "SELECT count(*) FROM media") < 5:
        assert proc.poll() is None, "the scan ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the scan and its analysis workers, mid-flight
    proc.wait()
    partial = _count(url, "SELECT count(*) FROM media")
    assert 5 <= partial < files - 3

    summary = scan.scan(app.store, app.settings, [str(tmp_path / "c" / "scan")])
    assert summary.already_known == partial
    assert summary.files == files
    distinct = len({p.read_bytes() for p in (tmp_path / "c" / "scan").rglob("*") if p.is_file()})
    assert _count(url, "SELECT count(*) FROM media") == distinct
    assert _count(url, "SELECT count(*) FROM (SELECT sha256 FROM media GROUP BY sha256 HAVING count(*) > 1) d") == 0
    assert _count(url, "SELECT count(*) FROM sightings") == files
    assert _count(url, "SELECT count(*) FROM faces f LEFT JOIN media m ON m.id = f.media_id WHERE m.id IS NULL") == 0
    assert (
        _count(url, "SELECT count(*) FROM (SELECT media_id, idx FROM faces GROUP BY 1, 2 HAVING count(*) > 1) d") == 0
    )
    assert (
        _count(url, "SELECT count(*) FROM matches WHERE face_id IS NOT NULL AND face_id NOT IN (SELECT id FROM faces)")
        == 0
    )
    # every subject copy (8 in the corpus + 12 extra) is matched exactly once
    assert _count(url, "SELECT count(*) FROM matches WHERE kind = 'face'") == 20
