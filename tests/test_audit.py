"""The keyed audit chain: every kind of tampering a database superuser can do is found by ``verify``, and the
checkpoint outside the database catches what leaves no trace inside it (truncation, a deleted tail)."""

from __future__ import annotations

import hashlib
import json
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from likeness.services import audit as audit_service
from likeness.services import hashes
from likeness.services.app import App, open_app
from likeness.settings import Settings
from likeness.store import audit
from likeness.store.audit import Head, advance_checkpoint, read_checkpoint
from tests import images
from tests.images import photos


def _rows(app: App, count: int = 8) -> int:
    """``count`` audit rows, cheaply: a bank created, then switched on and off."""
    hashes.configure_bank(app, "b", actor="test")
    for n in range(count - 1):
        hashes.configure_bank(app, "b", enabled=n % 2 == 1, actor="test")
    return count


def _verdict(app: App) -> audit.Verdict:
    return audit_service.verify(app)


def _superuser(app: App, *statements: str) -> None:
    """What a database superuser can do: lift every trigger, then anything."""
    with app.store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER ALL"))
        for statement in statements:
            conn.execute(text(statement))
        conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER ALL"))


def test_an_intact_chain_verifies_up_to_its_checkpoint(app: App) -> None:
    count = _rows(app)
    verdict = _verdict(app)
    assert verdict.intact and verdict.rows == count and verdict.checkpoint == count
    checkpoint = read_checkpoint(app.store.box.checkpoint)
    assert checkpoint is not None and checkpoint.seq == count
    with app.store.engine.connect() as conn:
        seqs = conn.execute(text("SELECT seq FROM audit_log ORDER BY id")).scalars().all()
        head = conn.execute(text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": count}).scalar_one()
    assert seqs == list(range(1, count + 1)) and checkpoint.mac == head


def test_truncation_is_detected(app: App) -> None:
    count = _rows(app)
    _superuser(app, "TRUNCATE audit_log")
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == 1 and verdict.checkpoint == count
    assert "truncated" in (verdict.reason or "")


def test_tail_deletion_is_detected(app: App) -> None:
    count = _rows(app)
    _superuser(app, f"DELETE FROM audit_log WHERE seq > {count - 2}")
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == count - 1 and verdict.rows == count - 2


def test_a_deleted_middle_row_is_a_gap(app: App) -> None:
    _rows(app)
    _superuser(app, "DELETE FROM audit_log WHERE seq = 4")
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == 4 and "missing" in (verdict.reason or "")


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE audit_log SET at = at - interval '1 hour' WHERE seq = 3",
        'UPDATE audit_log SET details = \'{"bank": "other"}\' WHERE seq = 3',
        "UPDATE audit_log SET actor = 'someone else' WHERE seq = 3",
        "UPDATE audit_log SET entity_id = 9 WHERE seq = 3",
    ],
    ids=["timestamp", "details", "actor", "entity_id"],
)
def test_an_edit_of_any_field_is_detected(app: App, edit: str) -> None:
    _rows(app)
    _superuser(app, edit)
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == 3 and "altered" in (verdict.reason or "")


def test_a_rewrite_rechained_with_plain_hashes_is_detected(app: App) -> None:
    """The attack the SHA-256 chain of 0001 could not see: rewrite a row, then recompute every hash after it."""
    _rows(app)
    _superuser(app, 'UPDATE audit_log SET details = \'{"bank": "forged"}\' WHERE seq = 5')
    with app.store.engine.begin() as conn:
        rows = conn.execute(text("SELECT id, actor, action, entity, entity_id, details FROM audit_log ORDER BY seq"))
        prev, chain = "0" * 64, []
        for row in rows.mappings():
            body = {k: row[k] for k in ("actor", "action", "entity", "entity_id", "details")}
            digest = hashlib.sha256((prev + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()
            chain.append((row["id"], prev, digest))
            prev = digest
    _superuser(app, *(f"UPDATE audit_log SET prev_hash = '{p}', hash = '{h}' WHERE id = {i}" for i, p, h in chain))
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == 1  # row 1's MAC no longer fits: the key is not in the database


def test_a_new_chain_after_truncation_does_not_move_the_checkpoint(app: App) -> None:
    count = _rows(app)
    _superuser(app, "TRUNCATE audit_log")
    _rows(app, count + 2)  # the application goes on writing: a fresh chain, longer than the old one
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == 1 and "rewritten from the start" in (verdict.reason or "")
    checkpoint = read_checkpoint(app.store.box.checkpoint)
    assert checkpoint is not None and checkpoint.seq == count  # still the old chain's head


def test_a_tail_deleted_then_written_over_is_detected(app: App) -> None:
    """Rows 7 and 8 deleted, then the application writes four more: the new chain passes the checkpointed row
    number with valid MACs, but it is not the checkpointed chain, and the checkpoint does not follow it."""
    count = _rows(app)
    _superuser(app, f"DELETE FROM audit_log WHERE seq > {count - 2}")
    for n in range(4):
        hashes.configure_bank(app, "b", enabled=n % 2 == 0, actor="test")
    verdict = _verdict(app)
    assert not verdict.intact and verdict.first_bad == count and "replaced" in (verdict.reason or "")
    checkpoint = read_checkpoint(app.store.box.checkpoint)
    assert checkpoint is not None and checkpoint.seq == count


def test_a_damaged_checkpoint_is_reported(app: App) -> None:
    _rows(app)
    app.store.box.checkpoint.write_text("{}")
    verdict = _verdict(app)
    assert not verdict.intact and "not an audit checkpoint" in (verdict.reason or "")
    hashes.configure_bank(
        app, "b", enabled=True, actor="test"
    )  # the application goes on, and leaves the evidence alone
    assert app.store.box.checkpoint.read_text() == "{}"


def test_the_checkpoint_only_moves_forward(tmp_path: Path) -> None:
    path = tmp_path / "head.json"
    advance_checkpoint(path, Head(5, "a" * 64, "g" * 64))
    advance_checkpoint(path, Head(3, "b" * 64, "g" * 64))  # a slower process committing an earlier row
    advance_checkpoint(path, Head(9, "c" * 64, "x" * 64))  # another chain
    assert read_checkpoint(path) == Head(5, "a" * 64, "g" * 64)
    advance_checkpoint(path, Head(6, "d" * 64, "g" * 64))
    assert read_checkpoint(path) == Head(6, "d" * 64, "g" * 64)


def test_concurrent_writers_keep_the_sequence_gapless(app: App) -> None:
    """Rolled-back transactions burn ids, never sequence numbers; the checkpoint ends at the last row."""

    def writer(n: int) -> None:
        for i in range(6):
            try:
                with app.store.transaction() as session:
                    audit.record(session, "test.event", "test", n * 100 + i, {"i": i}, actor="test")
                    if i % 3 == 2:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                pass

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    verdict = _verdict(app)
    assert verdict.intact and verdict.rows == 16 and verdict.checkpoint == 16
    with app.store.engine.connect() as conn:
        assert conn.execute(text("SELECT max(id) - count(*) FROM audit_log")).scalar_one() > 0  # ids have gaps


def test_the_checkpoint_lives_where_settings_say(settings: Settings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "witness" / "head.json"
    with open_app(settings.model_copy(update={"audit_checkpoint": elsewhere})) as app:
        _rows(app, 3)
    assert (read_checkpoint(elsewhere) or Head(0, "", "")).seq == 3
    assert not (settings.home / "audit-head.json").exists()


def test_export_is_a_verifiable_copy_whose_personal_parts_shred(app: App, tmp_path: Path) -> None:
    picture = images.write(tmp_path / "p.jpg", images.NO_FACE["chelsea"]())
    hashes.add_files(app, "ncii", photos([picture]), submission="Case of Wilhelmina Export", actor="test")
    lines: list[str] = []
    audit_service.export(app, lines.append, decrypt=True)
    rows = [json.loads(line) for line in lines]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    [created] = [r for r in rows if r["action"] == "submission.created"]
    assert created["personal"] == {"label": "Case of Wilhelmina Export"} and created["personal_sealed"]
    assert "Wilhelmina" not in json.dumps([{k: v for k, v in r.items() if k != "personal"} for r in rows])
    hashes.withdraw(app, actor="test", submission="Case of Wilhelmina Export")
    out = tmp_path / "audit.jsonl"
    assert audit_service.export_file(app, out, decrypt=True) == len(rows) + 2  # hash and submission withdrawn
    again = {r["seq"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert again[created["seq"]]["personal"] == "shredded"
    assert again[created["seq"]]["mac"] == created["mac"] and _verdict(app).intact
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_cli_verify_exits_0_when_intact_and_1_when_broken(
    app: App, cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from likeness.cli.main import app as cli
    from likeness.settings import get_settings

    _rows(app)
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    intact = runner.invoke(cli, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output
    assert "intact: 8 row(s)" in " ".join(intact.output.split())
    exported = runner.invoke(cli, ["audit", "export"])
    assert exported.exit_code == 0 and len(exported.output.splitlines()) == 8
    _superuser(app, "DELETE FROM audit_log WHERE seq = 8")
    broken = runner.invoke(cli, ["audit", "verify"])
    get_settings.cache_clear()
    said = " ".join(broken.output.split())
    assert broken.exit_code == 1 and "broken at row 8" in said and "truncated or its tail deleted" in said
