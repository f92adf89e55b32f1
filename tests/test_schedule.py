"""The scheduler on a real database and queue: a source comes due on its cadence (the clock injected), a subject's
tier sets its re-search cadence and what it gets, and a tick queues due work once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from likeness import schedule
from likeness.cli.main import app as cli
from likeness.errors import InvalidInput, NotFound
from likeness.schedule import tasks
from likeness.services.app import App
from likeness.settings import Settings, TierSettings, get_settings
from likeness.store.models import AuditEvent, Subject
from tests.queueing import open_queue

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
_JOBS = """SELECT task_name, queue_name, priority, args, status::text FROM procrastinate_jobs
WHERE task_name LIKE 'schedule.%' AND task_name <> 'schedule.tick' ORDER BY id"""


def _subject(app: App, created_at: datetime = T0) -> int:
    """A subject row with its own data key, as enrollment leaves one (without references: the scheduler reads only
    ids, tiers and times; a re-search of it finds nothing)."""
    with app.store.transaction() as s:
        key = app.store.box.new_key(s)
        row = Subject(
            key_id=key.id, name_enc=key.seal_text("someone"), engine="test", model="test", created_at=created_at
        )
        s.add(row)
        s.flush()
        return row.id


def _audited(app: App, action: str) -> int:
    with app.store.transaction() as s:
        return len(s.scalars(select(AuditEvent.id).where(AuditEvent.action == action)).all())


def test_a_source_comes_due_on_its_cadence(app: App) -> None:
    with app.store.transaction() as s:
        schedule.set_source(s, "pics", "reddit", query="pics", every_s=3600, actor="test")
        schedule.set_source(s, "off", "civitai", every_s=60, enabled=False, actor="test")
        assert schedule.due_sources(s, T0) == ["pics"]  # never queued: due at once; disabled: never
        assert [x.name for x in schedule.claim_due_sources(s, T0)] == ["pics"]
        assert schedule.due_sources(s, T0 + timedelta(minutes=59)) == []
        assert schedule.due_sources(s, T0 + timedelta(hours=1)) == ["pics"]
        # A new cadence counts from when it was last queued.
        schedule.set_source(s, "pics", "reddit", query="pics", every_s=7200, actor="test")
        assert schedule.due_sources(s, T0 + timedelta(hours=1)) == []
        assert schedule.due_sources(s, T0 + timedelta(hours=2)) == ["pics"]
        schedule.remove_source(s, "pics", actor="test")
        assert schedule.due_sources(s, T0 + timedelta(days=9)) == []
    assert _audited(app, "schedule.source_set") == 3 and _audited(app, "schedule.source_removed") == 1


def test_a_schedule_is_checked(app: App) -> None:
    with app.store.transaction() as s:
        for kind, query, every_s in [("reddit", None, 3600), ("flickr", None, 3600), ("civitai", None, 30)]:
            with pytest.raises(InvalidInput):
                schedule.set_source(s, "x", kind, query=query, every_s=every_s, actor="test")
        with pytest.raises(NotFound):
            schedule.remove_source(s, "nothing", actor="test")


def test_a_tier_sets_the_cadence_and_what_a_subject_gets(app: App) -> None:
    free, premium = _subject(app), _subject(app)
    config = app.settings.schedule
    with app.store.transaction() as s:
        schedule.set_tier(s, premium, "premium", config, actor="test")
        assert schedule.tier_of(s, free, config) == "free"  # no tier set: the default
        assert not schedule.gets(s, free, config, "evidence_capture") and not schedule.gets(
            s, free, config, "takedown_drafts"
        )
        assert schedule.gets(s, premium, config, "evidence_capture") and schedule.gets(
            s, premium, config, "takedown_drafts"
        )
        assert schedule.entitlements(s, premium, config).priority > schedule.entitlements(s, free, config).priority
        # Premium every six hours, free weekly, both from enrollment.
        assert schedule.due_subjects(s, T0 + timedelta(hours=6), config) == [premium]
        assert schedule.due_subjects(s, T0 + timedelta(days=7), config) == [free, premium]
        assert [x.subject_id for x in schedule.claim_due_subjects(s, T0 + timedelta(hours=6), config)] == [premium]
        assert schedule.due_subjects(s, T0 + timedelta(hours=11), config) == []
        assert schedule.due_subjects(s, T0 + timedelta(hours=12), config) == [premium]
    # The tiers are settings: change one and what its subjects get changes with it.
    config.tiers["free"] = TierSettings(recheck_every_s=3600, evidence_capture=True)
    config.tiers["premium"] = TierSettings(recheck_every_s=3600, retro_search=False)
    with app.store.transaction() as s:
        assert schedule.gets(s, free, config, "evidence_capture")
        assert schedule.due_subjects(s, T0 + timedelta(hours=1), config) == [free]  # premium no longer re-searched
        with pytest.raises(InvalidInput):
            schedule.set_tier(s, free, "gold", config, actor="test")
        with pytest.raises(InvalidInput):
            schedule.gets(s, free, config, "everything")
    assert _audited(app, "subject.tier_set") == 1


def test_a_withdrawn_subject_has_no_tier_and_is_not_due(app: App) -> None:
    gone = _subject(app)
    with app.store.transaction() as s:
        s.execute(text("UPDATE subjects SET withdrawn_at = now() WHERE id = :id"), {"id": gone})
        with pytest.raises(NotFound):
            schedule.set_tier(s, gone, "premium", app.settings.schedule, actor="test")
        assert schedule.due_subjects(s, T0 + timedelta(days=30), app.settings.schedule) == []


def test_a_tick_queues_due_work_once(app: App) -> None:
    free, premium = _subject(app), _subject(app)
    with app.store.transaction() as s:
        schedule.set_source(s, "pics", "reddit", query="pics", every_s=3600, actor="test")
        schedule.set_tier(s, premium, "premium", app.settings.schedule, actor="test")
    with open_queue(app) as queue:
        first = tasks.queue_due(app, T0 + timedelta(hours=6))
        assert first.crawls == ["pics"] and first.rechecks == [premium]  # free is weekly: not yet
        again = tasks.queue_due(app, T0 + timedelta(hours=6, minutes=1))
        assert again.crawls == again.rechecks == []
        # Due again an hour on, but its crawl has not run yet: not queued twice.
        later = tasks.queue_due(app, T0 + timedelta(hours=7))
        assert later.crawls == [] and later.already_queued == ["pics"]
        with app.store.transaction() as s:
            found = s.execute(text(_JOBS)).all()
        assert [tuple(r) for r in found] == [
            (tasks.CRAWL_SOURCE, "io", tasks.CRAWL_PRIORITY, {"name": "pics"}, "todo"),
            (tasks.RECHECK_SUBJECT, "match", 10, {"subject_id": premium}, "todo"),
        ]
        queue.run_worker(queues=["match"], wait=False, install_signal_handlers=False)
        with app.store.transaction() as s:
            statuses = [tuple(r)[-1] for r in s.execute(text(_JOBS))]
        assert statuses == ["todo", "succeeded"]  # the re-search ran; the crawl waits for an io worker
    assert free != premium


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """The CLI in this process, on this test's database."""
    monkeypatch.setenv("LIKENESS_HOME", str(settings.home))
    monkeypatch.setenv("LIKENESS_DATABASE_URL", str(settings.database_url))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, list(args))
    finally:
        get_settings.cache_clear()
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_sets_and_lists_schedules(app: App, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    subject = _subject(app)
    code, _, err = _cli(settings, monkeypatch, "schedule", "set", "art", "--kind", "deviantart", "--every", "6h")
    assert code == 0, err
    code, _, err = _cli(settings, monkeypatch, "schedule", "tier", str(subject), "protected")
    assert code == 0, err
    code, listed, err = _cli(settings, monkeypatch, "schedule", "list", "--format", "json")
    assert code == 0, err
    found = json.loads(listed)
    assert [(x["name"], x["every_s"]) for x in found["sources"]] == [("art", 6 * 3600)]
    assert [(x["subject_id"], x["tier"]) for x in found["subjects"]] == [(subject, "protected")]
    code, table, err = _cli(settings, monkeypatch, "schedule", "list")
    assert code == 0 and "art" in table and "protected" in table and "takedown_drafts" in table, err
    code, _, err = _cli(settings, monkeypatch, "schedule", "set", "bad", "--kind", "reddit")
    assert code == 2 and "subreddit" in err
    code, _, err = _cli(settings, monkeypatch, "schedule", "tier", str(subject), "gold")
    assert code == 2 and "gold" in err
