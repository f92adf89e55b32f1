"""Review as a state machine: the moves it has are audited with their reviewer and note, the ones it has not are
refused (naming the allowed ones), and a false positive is kept as a labelled pair, without pictures, for
calibration."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from likeness.cases.review import NEXT
from likeness.cli.main import app as cli
from likeness.errors import Conflict, InvalidInput
from likeness.services import corpus, review
from likeness.services.app import App
from likeness.store.models import AuditEvent, CalibrationPair, Subject
from tests.test_review import scanned

__all__ = ["scanned"]
PATH = [("confirmed", "looks like her"), ("actioned", "DMCA sent"), ("still_up", "up after 48 h"),
        ("actioned", "escalated"), ("removed", None)]  # fmt: skip


def _events(app: App, match_id: int) -> list[AuditEvent]:
    with app.store.transaction() as session:
        query = select(AuditEvent).where(AuditEvent.entity == "match", AuditEvent.entity_id == match_id)
        found = list(session.scalars(query.order_by(AuditEvent.seq)))
        session.expunge_all()
    return [e for e in found if e.action != "match.created"]


def _personal(app: App, event: AuditEvent) -> dict[str, str] | None:
    key = app.store.box.key(event.key_id)
    return key.open_json(event.personal) if key is not None and event.personal is not None else None


def test_every_move_is_audited_with_its_reviewer_and_note(app: App, scanned: corpus.Corpus) -> None:
    match = review.list_matches(app, limit=None)[0]
    for i, (status, note) in enumerate(PATH):
        done = review.set_status(app, match.id, status, actor=f"user:{i}", note=note)
        assert (done.status, done.reviewer) == (status, f"user:{i}")
        if note is not None:
            assert done.note == note
    events = _events(app, match.id)
    assert [e.action for e in events] == [f"match.{s}" for s, _ in PATH]
    previous = ["new"] + [s for s, _ in PATH[:-1]]
    for i, (event, (_, note), before) in enumerate(zip(events, PATH, previous, strict=True)):
        assert event.actor == f"user:{i}" and event.details["reviewer"] == f"user:{i}"
        assert event.details["from"] == before
        assert _personal(app, event) == ({"note": note} if note is not None else None)
        assert event.details.get("note", False) is (note is not None)


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "actioned"),  # nothing sent for a match nobody confirmed
        ([], "removed"),
        (["rejected"], "confirmed"),  # final
        (["false_positive"], "new"),
        (["confirmed"], "rejected"),
        (["confirmed", "actioned", "removed"], "still_up"),
        ([], "released"),  # only a held match is released
    ],
)
def test_moves_the_machine_does_not_have_are_refused(
    app: App, scanned: corpus.Corpus, path: list[str], refused: str
) -> None:
    match = review.list_matches(app, limit=None)[0]
    for status in path:
        review.set_status(app, match.id, status, actor="test")
    before = len(_events(app, match.id))
    with pytest.raises(Conflict) as caught:
        review.set_status(app, match.id, refused, actor="test", note="should not stick")
    allowed = NEXT[path[-1] if path else "new"]
    assert all(s in str(caught.value) for s in allowed)  # the error names the moves there are
    after = review.get_match(app, match.id)
    assert after.status == (path[-1] if path else "new") and after.note is None
    assert len(_events(app, match.id)) == before
    with pytest.raises(InvalidInput, match="unknown status"):
        review.set_status(app, match.id, "deleted", actor="test")


def test_a_held_match_is_released_then_decided(app: App, scanned: corpus.Corpus) -> None:
    match = review.list_matches(app, limit=None)[0]
    with app.store.engine.begin() as conn:  # what flood quarantine does (match/hashes.py)
        conn.exec_driver_sql("UPDATE matches SET status = 'on_hold' WHERE id = %s", (match.id,))
    assert review.set_status(app, match.id, "released", actor="user:1").status == "released"
    assert review.set_status(app, match.id, "rejected", actor="user:2").status == "rejected"


def test_a_false_positive_is_kept_as_a_labelled_pair_without_pictures(app: App, scanned: corpus.Corpus) -> None:
    first, second = review.list_matches(app, limit=None)[:2]
    review.set_status(app, first.id, "false_positive", actor="user:7", note="her sister")
    review.set_status(app, second.id, "rejected", actor="user:7")  # rejected: no verdict on the pair itself
    with app.store.transaction() as session:
        pairs = list(session.scalars(select(CalibrationPair)))
        model = session.scalar(select(Subject.model).where(Subject.id == first.subject_id))
        columns = set(CalibrationPair.__table__.columns.keys())
        assert [(p.match_id, p.label, p.kind, p.subject_id, p.reviewer) for p in pairs] == [
            (first.id, "false_positive", "face", first.subject_id, "user:7")
        ]
        assert (pairs[0].score, pairs[0].tier, pairs[0].model) == (first.score, first.tier, model)
    assert not any(word in c for c in columns for word in ("image", "crop", "picture", "note", "embedding"))


def test_cli_review_names_the_allowed_moves(
    cli_env: dict[str, str], scanned: corpus.Corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    from likeness.settings import get_settings

    get_settings.cache_clear()
    runner = CliRunner()
    match_id = json.loads(runner.invoke(cli, ["matches", "list", "--format", "json"]).output)[0]["id"]
    refused = runner.invoke(cli, ["matches", "review", str(match_id), "actioned"])
    assert refused.exit_code != 0 and "confirmed, rejected, false_positive" in refused.output
    done = runner.invoke(cli, ["matches", "review", str(match_id), "false_positive", "--note", "not her"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(cli, ["matches", "confirm", str(match_id)]).exit_code != 0
    get_settings.cache_clear()
