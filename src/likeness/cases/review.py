"""Review states. new | on_hold -> confirmed | rejected; every change is audited in the same transaction.

Names and submission labels are decrypted here for people, each with its owner's key; the matches of a withdrawn
subject (marked, or whose key is gone) are not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session

from likeness.errors import LikenessError, NotFound
from likeness.registry.hashes import submission_labels
from likeness.store import audit
from likeness.store.crypto import Box, DataKey
from likeness.store.models import Face, Match, Media, ProtectedHash, Sighting, Subject

STATUSES = ("new", "on_hold", "confirmed", "rejected")  # on_hold: parked by flood quarantine


@dataclass(frozen=True)
class MatchRow:
    id: int
    kind: str
    target: str  # subject name or bank name
    subject_id: int | None
    location: str
    score: float
    tier: str
    status: str
    media_id: int
    sha256: str
    face_box: tuple[int, int, int, int] | None
    frame: int  # the media's frame the face was seen in, or the hash matched
    nsfw: float | None
    provenance: dict[str, str]
    created_at: datetime
    detail: dict[str, Any] | None = None  # vPDQ's video-level shares, for matches on a protected video

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject_id": self.subject_id,
            "subject" if self.kind == "face" else "bank": self.target,
            "location": self.location,
            "score": round(self.score, 4),
            "tier": self.tier,
            "status": self.status,
            "media_id": self.media_id,
            "sha256": self.sha256,
            "face_box": list(self.face_box) if self.face_box else None,
            "frame": self.frame,
            "nsfw": self.nsfw,
            "ai_generator": self.provenance.get("generator"),
            "created_at": self.created_at.isoformat(),
            "video": self.detail,
        }


@dataclass(frozen=True)
class MediaSummary:
    """What one media matched, across its frames: the per-media aggregate a reviewer starts from."""

    media_id: int
    sha256: str
    location: str
    subjects: list[str]
    banks: list[str]
    max_nsfw: float | None
    frames: list[int]  # the frames that matched anything
    video_matches: list[dict[str, Any]]  # vPDQ verdicts against protected videos, one per submission
    match_ids: list[int]


def summarise(rows: list[MatchRow]) -> list[MediaSummary]:
    by_media: dict[int, list[MatchRow]] = {}
    for row in rows:
        by_media.setdefault(row.media_id, []).append(row)
    return [_summary(group) for group in by_media.values()]


def _summary(group: list[MatchRow]) -> MediaSummary:
    first = group[0]
    videos = {r.detail["submission"]: r.detail for r in group if r.detail}
    return MediaSummary(
        first.media_id,
        first.sha256,
        first.location,
        sorted({r.target for r in group if r.kind == "face"}),
        sorted({r.target for r in group if r.kind == "hash"}),
        first.nsfw,
        sorted({r.frame for r in group}),
        list(videos.values()),
        [r.id for r in group],
    )


def list_matches(session: Session, box: Box, status: str | None = None, media_id: int | None = None) -> list[MatchRow]:
    if status:
        _check_status(status)
    query = _matches_query(status)
    if media_id is not None:
        query = query.where(Match.media_id == media_id)
    keys: dict[str | None, DataKey | None] = {}
    rows = [row for record in session.execute(query) if (row := _row(record, box, keys)) is not None]
    return _with_labels(session, rows)


def _with_labels(session: Session, rows: list[MatchRow]) -> list[MatchRow]:
    """vPDQ details name their submission by id: people read its label (while it is not withdrawn)."""
    ids = {r.detail["submission"] for r in rows if r.detail and isinstance(r.detail.get("submission"), str)}
    if not ids:
        return rows
    labels = submission_labels(session, ids)
    return [_labelled(r, labels) for r in rows]


def _labelled(row: MatchRow, labels: dict[str, str]) -> MatchRow:
    submission = row.detail.get("submission") if row.detail else None
    if row.detail is None or submission not in labels:
        return row
    return replace(row, detail={**row.detail, "submission": labels[submission]})


def _matches_query(status: str | None) -> Select[Any]:
    """Each match with its media, first location, subject or bank, and face."""
    first_seen = (
        select(Sighting.media_id, func.min(Sighting.location).label("location")).group_by(Sighting.media_id).subquery()
    )
    query = (
        select(Match, Media.sha256, Media.nsfw, Media.provenance, first_seen.c.location, Subject.key_id,
               Subject.name_enc, ProtectedHash.bank, Face.frame, Face.x, Face.y, Face.w, Face.h)
        .join(Media, Media.id == Match.media_id)
        .join(first_seen, first_seen.c.media_id == Match.media_id)
        .outerjoin(Subject, Subject.id == Match.subject_id)
        .outerjoin(ProtectedHash, ProtectedHash.id == Match.hash_id)
        .outerjoin(Face, Face.id == Match.face_id)
        .where(or_(Match.subject_id.is_(None), Subject.withdrawn_at.is_(None)))
        .order_by(Match.id)
    )  # fmt: skip
    return query.where(Match.status == status) if status else query


def _row(record: Row[Any], box: Box, keys: dict[str | None, DataKey | None]) -> MatchRow | None:
    """The match for people; None for a face match whose subject's key is gone (withdrawn)."""
    m, sha, nsfw, prov, loc, key_id, name_enc, bank, frame, x, y, w, h = tuple(record)
    target = bank
    if m.subject_id is not None:
        if key_id not in keys:
            keys[key_id] = box.key(key_id)
        key = keys[key_id]
        if key is None:
            return None
        target = key.open_text(name_enc)
    face_box = (x, y, w, h) if x is not None else None
    return MatchRow(m.id, m.kind, target, m.subject_id, loc, m.score, m.tier, m.status, m.media_id, sha, face_box,
                    frame or m.frame or 0, nsfw, prov or {}, m.created_at, m.detail)  # fmt: skip


def set_status(session: Session, match_id: int, status: str, actor: str = "cli") -> None:
    _check_status(status)
    match = session.get(Match, match_id)
    if match is None:
        raise NotFound(f"no match {match_id}")
    if match.status == status:
        return
    previous, match.status, match.updated_at = match.status, status, func.now()
    audit.record(session, f"match.{status}", "match", match_id, {"from": previous}, actor=actor)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise LikenessError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
