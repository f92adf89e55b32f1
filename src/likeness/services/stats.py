"""Counts for a dashboard or ``/v1/stats``: what the catalogue, registry and review queue hold."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from likeness.registry import hashes as hash_registry
from likeness.services.app import App
from likeness.store.models import Base, Face, Match, Media, ProtectedHash, Sighting, Subject


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
