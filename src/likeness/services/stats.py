"""Counts for a dashboard or ``/v1/stats``: what the catalogue, registry and review queue hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from likeness.registry import hashes as hash_registry
from likeness.services.app import App
from likeness.store.models import Base, Face, Match, Media, ProtectedHash, Sighting, Subject, TakedownNotice


@dataclass(frozen=True)
class Stats:
    media: int
    failed_media: int
    sightings: int
    faces: int
    subjects: int
    matches: dict[str, int]  # by status
    matches_by_kind: dict[str, int]
    banks: int
    hashes: int


def stats(app: App) -> Stats:
    with app.store.transaction() as session:
        statuses = {s: n for s, n in session.execute(select(Match.status, func.count()).group_by(Match.status))}
        kinds = {k: n for k, n in session.execute(select(Match.kind, func.count()).group_by(Match.kind))}
        return Stats(
            media=_count(session, Media),
            failed_media=_count(session, Media, Media.status == "failed"),
            sightings=_count(session, Sighting),
            faces=_count(session, Face),
            subjects=_count(session, Subject, Subject.withdrawn_at.is_(None)),
            matches=statuses,
            matches_by_kind=kinds,
            banks=len(hash_registry.banks(session, counted=False)),
            hashes=_count(session, ProtectedHash),
        )


def _count(session: Session, model: type[Base], *where: ColumnElement[bool]) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


@dataclass(frozen=True)
class Day:
    """What one UTC day brought: places seen for the first time, media analysed, faces found in them, matches."""

    day: date
    crawled: int
    analysed: int
    faces: int
    matches: int


def per_day(app: App, days: int = 14) -> list[Day]:
    """The last ``days`` days, oldest first, zeros included (a chart's gap is a day with nothing)."""
    today = datetime.now(UTC).date()
    since = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), UTC)
    with app.store.transaction() as session:
        series = {
            "crawled": _by_day(session, Sighting.first_seen, since),
            "analysed": _by_day(session, Media.created_at, since, Media.status == "analyzed"),
            "faces": _by_day(session, Media.created_at, since, join=(Face, Face.media_id == Media.id)),
            "matches": _by_day(session, Match.created_at, since),
        }
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    return [Day(d, *(series[k].get(d, 0) for k in ("crawled", "analysed", "faces", "matches"))) for d in span]


def _by_day(
    session: Session, column: Any, since: datetime, *where: ColumnElement[bool], join: Any = None
) -> dict[date, int]:
    day = func.date(func.timezone("UTC", column))
    query = select(day, func.count()).where(column >= since, *where).group_by(day)
    if join is not None:
        query = query.select_from(column.class_).join(*join)
    return {d: n for d, n in session.execute(query)}


def takedowns(app: App) -> dict[str, int]:
    """Takedown notices by status, and how many matches a subject asked a takedown for and none was drafted."""
    with app.store.transaction() as session:
        found = {
            s: n
            for s, n in session.execute(select(TakedownNotice.status, func.count()).group_by(TakedownNotice.status))
        }
        drafted = select(TakedownNotice.match_id)
        found["requested"] = _count(session, Match, Match.takedown_requested_at.is_not(None), Match.id.not_in(drafted))
    return found
