"""Review states, the audit log that records them, the JSON and HTML outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from likeness.cli.main import app as cli
from likeness.services import corpus, review, scan, subjects
from likeness.services.app import App
from likeness.store import audit
from likeness.store.models import AuditEvent
from tests.images import photos


@pytest.fixture
def scanned(app: App, tmp_path: Path) -> corpus.Corpus:
    made = corpus.build(tmp_path / "c")
    subjects.enroll(app, "Eileen", photos([made.reference]), actor="test")
    scan.scan(app, [str(made.scan_dir / "subject"), str(made.scan_dir / "others")], actor="test")
    return made


def _events(app: App, action: str) -> int:
    with app.store.transaction() as session:
        return session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0


def test_state_changes_are_audited_in_a_verifiable_chain(app: App, scanned: corpus.Corpus) -> None:
    rows = review.list_matches(app, limit=None)
    assert _events(app, "subject.enrolled") == 1 and _events(app, "match.created") == len(rows)
    review.set_status(app, rows[0].id, "confirmed", actor="test")
    review.set_status(app, rows[1].id, "rejected", actor="test")
    review.set_status(app, rows[1].id, "rejected", actor="test")  # no change, no event
    assert (_events(app, "match.confirmed"), _events(app, "match.rejected")) == (1, 1)
    assert [r.status for r in review.list_matches(app, status="confirmed", limit=None)] == ["confirmed"]
    with app.store.transaction() as session:
        assert audit.verify(session).intact


def test_audit_log_refuses_update_and_delete(app: App, scanned: corpus.Corpus) -> None:
    for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), app.store.engine.begin() as conn:
            conn.execute(text(statement))


def test_tampering_is_detected_by_verify(app: App, scanned: corpus.Corpus) -> None:
    with app.store.engine.begin() as conn:  # an attacker with superuser rights drops the trigger first
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text("UPDATE audit_log SET details = '{}' WHERE seq = 2"))
    with app.store.transaction() as session:
        assert audit.verify(session).first_bad == 2


def test_cli_matches_json_confirm_and_report(
    cli_env: dict[str, str], scanned: corpus.Corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    from likeness.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    listed = runner.invoke(cli, ["matches", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert len(rows) == len(scanned.subject)
    assert {"id", "kind", "subject", "location", "score", "tier", "status"} <= set(rows[0])
    assert rows[0]["kind"] == "face" and rows[0]["subject"] == "Eileen" and rows[0]["status"] == "new"
    assert runner.invoke(cli, ["matches", "confirm", str(rows[0]["id"])]).exit_code == 0
    missing = runner.invoke(cli, ["matches", "confirm", "99999"])
    assert missing.exit_code == 2 and "no match 99999" in missing.output
    out = tmp_path / "report.html"
    made = runner.invoke(cli, ["report", "--out", str(out)])
    assert made.exit_code == 0, made.output
    html = out.read_text()
    assert html.count('alt="reference face"') == len(rows) and html.count('alt="found"') == len(rows)
    assert "data:image/jpeg;base64," in html and "<script" not in html and "http" not in html.split("<body>")[1][:200]
    assert "confirmed" in html and "similarity" in html
    get_settings.cache_clear()


def test_report_blurs_hash_matches(app: App, tmp_path: Path) -> None:
    from likeness.services import hashes

    made = corpus.build(tmp_path / "c")
    hashes.add_files(app, "ncii", photos([made.protected]), actor="test")
    scan.scan(app, [str(made.scan_dir / "reposts")], actor="test")
    out = tmp_path / "r.html"
    assert review.write_report(app, out) == 1
    html = out.read_text()
    assert "blurred: open the source to review" in html and "hash only (image never stored)" in html
