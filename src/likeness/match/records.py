"""Creating match rows: idempotent, audited in the same transaction."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.alerts import notify_new_matches
from likeness.store import audit
from likeness.store.models import Match


def create_match(
    session: Session,
    *,
    kind: str,
    media_id: int,
    score: float,
    tier: str,
    subject_id: int | None = None,
    face_id: int | None = None,
    hash_id: int | None = None,
    frame: int | None = None,
    detail: dict[str, object] | None = None,
    actor: str,
) -> bool:
    """True when the match is new; the same face/subject or hash/media pair is only ever one match. ``actor``: who
    caused the search (the scan's or the enrolment's actor)."""
    match_id = session.scalar(
        insert(Match)
        .values(
            kind=kind,
            media_id=media_id,
            score=score,
            tier=tier,
            status="new",
            subject_id=subject_id,
            face_id=face_id,
            hash_id=hash_id,
            frame=frame,
            detail=detail,
        )
        .on_conflict_do_nothing()
        .returning(Match.id)
    )
    if match_id is None:
        return False
    audit.record(
        session,
        "match.created",
        "match",
        match_id,
        {
            "kind": kind,
            "tier": tier,
            "score": round(score, 4),
            "subject_id": subject_id,
            "hash_id": hash_id,
            "media_id": media_id,
            "frame": frame,
            **(detail or {}),
        },
        actor=actor,
    )
    notify_new_matches(session, [match_id], None, actor=actor)  # alerts queued in this same transaction
    return True
