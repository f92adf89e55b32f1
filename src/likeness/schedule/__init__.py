"""The scheduler's records: each crawl source has a cadence, each subject a tier (settings.schedule.tiers: free /
protected / premium, seed 000) that sets how often the catalogue is searched again for its face and what else it
gets (retro-search, evidence capture, takedown drafts, alerts).

Functions here read and change the records in the caller's session; ``claim_*`` mark what they return as queued
(``FOR UPDATE SKIP LOCKED``: two schedulers ticking at once never claim one source twice). The periodic task that
queues the work is in tasks.py. ``now`` is always passed in, so a test moves the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from likeness.errors import InvalidInput, NotFound
from likeness.settings import ScheduleSettings, TierSettings
from likeness.store import audit
from likeness.store.models import CrawlSchedule, Subject, SubjectTier

SOURCE_KINDS = ("civitai", "reddit", "deviantart")  # what POST /v1/crawls starts; reddit needs its subreddit
_LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
WHAT = ("retro_search", "evidence_capture", "takedown_drafts", "alerts")  # what a tier may give


@dataclass(frozen=True)
class SourceSchedule:
    name: str
    kind: str
    query: str | None
    max_pages: int
    every_s: int
    enabled: bool
    last_deferred_at: datetime | None
    due_at: datetime | None  # None: disabled


@dataclass(frozen=True)
class SubjectSchedule:
    subject_id: int
    tier: str
    last_checked_at: datetime | None
    due_at: datetime


def set_source(
    session: Session,
    name: str,
    kind: str,
    *,
    query: str | None = None,
    max_pages: int = 10,
    every_s: int,
    enabled: bool = True,
    actor: str,
) -> SourceSchedule:
    """Create or change a source's schedule. A changed cadence counts from the last time it was queued."""
    _check_source(name, kind, query, max_pages, every_s)
    row = session.get(CrawlSchedule, name)
    if row is None:
        row = CrawlSchedule(name=name)
        session.add(row)
    row.kind, row.query, row.max_pages, row.every_s, row.enabled = kind, query, max_pages, every_s, enabled
    session.flush()
    details = {"name": name, "kind": kind, "query": query, "max_pages": max_pages, "every_s": every_s}
    audit.record(session, "schedule.source_set", "crawl_schedule", None, {**details, "enabled": enabled}, actor=actor)
    return _source(row)


def _check_source(name: str, kind: str, query: str | None, max_pages: int, every_s: int) -> None:
    if not name.strip() or len(name) > 200:
        raise InvalidInput("a schedule needs a name (at most 200 characters)")
    if kind not in SOURCE_KINDS:
        raise InvalidInput(f"unknown source kind {kind!r} (one of {', '.join(SOURCE_KINDS)})")
    if kind == "reddit" and not query:
        raise InvalidInput("a reddit schedule needs the subreddit (query)")
    if not 1 <= max_pages <= 1000:
        raise InvalidInput("max_pages must be between 1 and 1000")
    if every_s < 60:  # the scheduler ticks once a minute
        raise InvalidInput("a cadence is at least 60 seconds")


def remove_source(session: Session, name: str, *, actor: str) -> None:
    row = session.get(CrawlSchedule, name)
    if row is None:
        raise NotFound(f"no schedule {name!r}")
    session.delete(row)
    audit.record(session, "schedule.source_removed", "crawl_schedule", None, {"name": name}, actor=actor)


def get_source(session: Session, name: str) -> SourceSchedule:
    row = session.get(CrawlSchedule, name)
    if row is None:
        raise NotFound(f"no schedule {name!r}")
    return _source(row)


def list_sources(session: Session) -> list[SourceSchedule]:
    return [_source(r) for r in session.scalars(select(CrawlSchedule).order_by(CrawlSchedule.name))]


def due_sources(session: Session, now: datetime) -> list[str]:
    """The names of the enabled sources whose cadence has come round at ``now`` (never queued: due at once)."""
    return [s.name for s in list_sources(session) if s.due_at is not None and s.due_at <= now]


def claim_due_sources(session: Session, now: datetime) -> list[SourceSchedule]:
    """The due sources, each marked as queued at ``now``: the next tick does not queue them again."""
    rows = session.scalars(
        select(CrawlSchedule)
        .where(CrawlSchedule.enabled)
        .order_by(CrawlSchedule.name)
        .with_for_update(skip_locked=True)
    )
    claimed = []
    for row in rows:
        due = _source(row).due_at
        if due is not None and due <= now:
            row.last_deferred_at = now
            claimed.append(_source(row))
    return claimed


def _source(row: CrawlSchedule) -> SourceSchedule:
    due: datetime | None = None
    if row.enabled:  # never queued: due at once
        due = row.last_deferred_at + timedelta(seconds=row.every_s) if row.last_deferred_at else _LONG_AGO
    return SourceSchedule(
        row.name, row.kind, row.query, row.max_pages, row.every_s, row.enabled, row.last_deferred_at, due
    )


# --- subject tiers ----------------------------------------------------------------------------------------------


def tier_settings(settings: ScheduleSettings, tier: str) -> TierSettings:
    if tier not in settings.tiers:
        raise InvalidInput(f"unknown tier {tier!r} (one of {', '.join(settings.tiers)})")
    return settings.tiers[tier]


def set_tier(session: Session, subject_id: int, tier: str, settings: ScheduleSettings, *, actor: str) -> str:
    """Put a subject on a tier; its next re-search is due one new cadence after its last."""
    tier_settings(settings, tier)
    _subject(session, subject_id)
    row = session.get(SubjectTier, subject_id)
    if row is None:
        row = SubjectTier(subject_id=subject_id)
        session.add(row)
    row.tier = tier
    session.flush()
    audit.record(session, "subject.tier_set", "subject", subject_id, {"tier": tier}, actor=actor)
    return tier


def tier_of(session: Session, subject_id: int, settings: ScheduleSettings) -> str:
    _subject(session, subject_id)
    row = session.get(SubjectTier, subject_id)
    return row.tier if row is not None and row.tier in settings.tiers else settings.default_tier


def entitlements(session: Session, subject_id: int, settings: ScheduleSettings) -> TierSettings:
    """What the subject's tier gives it: follow-ups (evidence, takedown drafts, alerts) ask here before they run."""
    return tier_settings(settings, tier_of(session, subject_id, settings))


def gets(session: Session, subject_id: int, settings: ScheduleSettings, what: str) -> bool:
    if what not in WHAT:
        raise InvalidInput(f"unknown entitlement {what!r} (one of {', '.join(WHAT)})")
    return bool(getattr(entitlements(session, subject_id, settings), what))


def list_subjects(session: Session, settings: ScheduleSettings) -> list[SubjectSchedule]:
    """Every subject not withdrawn, with its tier and when its next re-search is due (from its last, or from its
    enrollment, which searched the catalogue)."""
    rows = session.execute(
        select(Subject.id, Subject.created_at, SubjectTier.tier, SubjectTier.last_checked_at)
        .outerjoin(SubjectTier, SubjectTier.subject_id == Subject.id)
        .where(Subject.withdrawn_at.is_(None))
        .order_by(Subject.id)
    )
    found = []
    for subject_id, created_at, tier, last in rows:
        tier = tier if tier in settings.tiers else settings.default_tier
        every = timedelta(seconds=settings.tiers[tier].recheck_every_s)
        found.append(SubjectSchedule(subject_id, tier, last, (last or created_at) + every))
    return found


def due_subjects(session: Session, now: datetime, settings: ScheduleSettings) -> list[int]:
    """Subjects whose tier's re-check cadence has come round and whose tier gives a retro-search."""
    return [
        s.subject_id
        for s in list_subjects(session, settings)
        if s.due_at <= now and settings.tiers[s.tier].retro_search
    ]


def claim_due_subjects(session: Session, now: datetime, settings: ScheduleSettings) -> list[SubjectSchedule]:
    claimed = []
    for subject_id in due_subjects(session, now, settings):
        row = session.get(SubjectTier, subject_id, with_for_update=True)
        if row is None:
            row = SubjectTier(subject_id=subject_id, tier=settings.default_tier)
            session.add(row)
        row.last_checked_at = now
        claimed.append(SubjectSchedule(subject_id, row.tier, now, now))
    session.flush()
    return claimed


def _subject(session: Session, subject_id: int) -> Subject:
    subject = session.get(Subject, subject_id)
    if subject is None or subject.withdrawn_at is not None:
        raise NotFound(f"no subject {subject_id}")
    return subject
