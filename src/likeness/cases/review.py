"""Review as a state machine; every change is validated, names its reviewer, may carry a note, and is audited in
the same transaction. ``NEXT`` lists the moves: a decision on a new (or released) match; a held match (flood
quarantine) released, or decided at once; a confirmed match actioned when a notice is sent, then removed or
still_up as re-checks find it. A false positive or a confirmation is kept as a labelled pair, without pictures,
for calibration (``CalibrationPair``).

Names and submission labels are decrypted here for people, each with its owner's key; the matches of a withdrawn
subject (marked, or whose key is gone) are not shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.orm import Session

from likeness.errors import Conflict, InvalidInput, NotFound
from likeness.registry.hashes import submission_key, submission_labels
from likeness.registry.subjects import subject_key
from likeness.store import audit
from likeness.store.crypto import Box, DataKey
from likeness.store.models import CalibrationPair, Face, Match, Media, ProtectedHash, Sighting, Subject

_DECISIONS = ("confirmed", "rejected", "false_positive")
NEXT: dict[str, tuple[str, ...]] = {
    "new": _DECISIONS,
    "on_hold": ("released", *_DECISIONS),  # on_hold: parked by flood quarantine; a reviewer may decide at once
    "released": _DECISIONS,
    "confirmed": ("actioned",),  # actioned: a takedown notice was sent
    "actioned": ("removed", "still_up"),  # what a re-check of the location found
    "still_up": ("actioned", "removed"),  # escalated (another notice), or gone at a later check
    "rejected": (),
    "false_positive": (),
    "removed": (),
}
STATUSES = tuple(NEXT)
CALIBRATED = ("false_positive", "confirmed")  # the decisions kept as labelled pairs


@dataclass(frozen=True)
class SightingRecord:
    """One place a media was seen: the URL or path, the page showing it, what its platform said of the post."""

    url: str
    page_url: str | None
    platform: str | None
    author: str | None
    posted_at: datetime | None
    first_seen: datetime
    last_seen: datetime


@dataclass(frozen=True)
class MatchRecord:
    id: int
    kind: str
    target: str  # subject name or bank name
    subject_id: int | None
    location: str  # one place it was seen (the first in order); every place is in ``sightings``
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
    hash_id: int | None = None  # hash matches: the protected hash, its bank and submission (label, for people)
    bank: str | None = None
    submission: str | None = None
    note: str | None = None  # the reviewer's note, decrypted
    updated_at: datetime | None = None
    sightings: list[SightingRecord] = field(default_factory=list)
    reviewer: str | None = None  # who made the last review decision (the actor)
    takedown_requested_at: datetime | None = None  # the subject asked for a takedown (the web portal)


MatchRow = MatchRecord  # the name before records said where


@dataclass(frozen=True)
class MediaRecord:
    """One catalogued media: what it is, every place it was seen, and what it matched."""

    media_id: int
    sha256: str
    status: str
    format: str | None
    width: int | None
    height: int | None
    frame_count: int | None
    nsfw: float | None
    provenance: dict[str, str]
    error_kind: str | None
    created_at: datetime
    sightings: list[SightingRecord]
    matches: list[MatchRecord]


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


def summarise(rows: list[MatchRecord]) -> list[MediaSummary]:
    by_media: dict[int, list[MatchRecord]] = {}
    for row in rows:
        by_media.setdefault(row.media_id, []).append(row)
    return [_summary(group) for group in by_media.values()]


def _summary(group: list[MatchRecord]) -> MediaSummary:
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


def list_matches(
    session: Session,
    box: Box,
    status: str | None = None,
    media_id: int | None = None,
    *,
    subjects: set[int] | None = None,
    kind: str | None = None,
    match_ids: list[int] | None = None,
    tier: str | None = None,
    takedown_requested: bool | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[MatchRecord]:
    """Matches, oldest first, each with every sighting of its media. ``subjects`` keeps the face matches of those
    subjects only (what a subject's own account may see: no hash matches); ``takedown_requested`` those whose
    subject asked for a takedown (True) or did not (False)."""
    if status:
        _check_status(status)
    if kind is not None and kind not in ("face", "hash"):
        raise InvalidInput(f"unknown kind {kind!r}; face or hash")
    query = _matches_query(status)
    if media_id is not None:
        query = query.where(Match.media_id == media_id)
    if subjects is not None:
        query = query.where(Match.kind == "face", Match.subject_id.in_(subjects))
    if kind is not None:
        query = query.where(Match.kind == kind)
    if match_ids is not None:
        query = query.where(Match.id.in_(match_ids))
    if tier is not None:
        query = query.where(Match.tier == tier)
    if takedown_requested is not None:
        asked = Match.takedown_requested_at.is_not(None)
        query = query.where(asked if takedown_requested else ~asked)
    query = query.offset(offset).limit(limit)
    keys: dict[str | None, DataKey | None] = {}
    rows = [row for record in session.execute(query) if (row := _row(record, box, keys)) is not None]
    seen = sightings(session, {r.media_id for r in rows})
    return [replace(r, sightings=seen.get(r.media_id, [])) for r in _with_labels(session, rows)]


def sightings(session: Session, media_ids: set[int]) -> dict[int, list[SightingRecord]]:
    """Every place each of these media was seen, in the order they were first seen."""
    if not media_ids:
        return {}
    columns = (Sighting.location, Sighting.page_url, Sighting.platform, Sighting.author, Sighting.posted_at,
               Sighting.first_seen, Sighting.last_seen)  # fmt: skip
    query = select(Sighting.media_id, *columns).where(Sighting.media_id.in_(media_ids)).order_by(Sighting.id)
    found: dict[int, list[SightingRecord]] = {}
    for row in session.execute(query):
        found.setdefault(row.media_id, []).append(SightingRecord(*row[1:]))
    return found


def get_match(session: Session, box: Box, match_id: int) -> MatchRecord:
    found = list_matches(session, box, match_ids=[match_id])
    if not found:
        raise NotFound(f"no match {match_id}")
    return found[0]


def get_media(session: Session, box: Box, media_id: int) -> MediaRecord:
    media = session.get(Media, media_id)
    if media is None:
        raise NotFound(f"no media {media_id}")
    return MediaRecord(media.id, media.sha256, media.status, media.format, media.width, media.height,
                       media.frame_count, media.nsfw, media.provenance or {}, media.error_kind, media.created_at,
                       sightings(session, {media_id}).get(media_id, []),
                       list_matches(session, box, media_id=media_id))  # fmt: skip


def _with_labels(session: Session, rows: list[MatchRecord]) -> list[MatchRecord]:
    """Hash matches and vPDQ details name their submission by id: people read its label (while it is not
    withdrawn)."""
    ids = {r.detail["submission"] for r in rows if r.detail and isinstance(r.detail.get("submission"), str)}
    ids |= {r.submission for r in rows if r.submission is not None}
    if not ids:
        return rows
    labels = submission_labels(session, ids)
    return [_labelled(r, labels) for r in rows]


def _labelled(row: MatchRecord, labels: dict[str, str]) -> MatchRecord:
    if row.submission is not None:
        row = replace(row, submission=labels.get(row.submission))
    submission = row.detail.get("submission") if row.detail else None
    if row.detail is None or submission not in labels:
        return row
    return replace(row, detail={**row.detail, "submission": labels[submission]})


def _matches_query(status: str | None) -> Select[Any]:
    """Each match with its media, a location, subject or bank, and face."""
    first_seen = (
        select(Sighting.media_id, func.min(Sighting.location).label("location")).group_by(Sighting.media_id).subquery()
    )
    query = (
        select(Match, Media.sha256, Media.nsfw, Media.provenance, first_seen.c.location, Subject.key_id,
               Subject.name_enc, ProtectedHash.bank, ProtectedHash.submission, Face.frame, Face.x, Face.y, Face.w,
               Face.h)
        .join(Media, Media.id == Match.media_id)
        .join(first_seen, first_seen.c.media_id == Match.media_id)
        .outerjoin(Subject, Subject.id == Match.subject_id)
        .outerjoin(ProtectedHash, ProtectedHash.id == Match.hash_id)
        .outerjoin(Face, Face.id == Match.face_id)
        .where(or_(Match.subject_id.is_(None), Subject.withdrawn_at.is_(None)))
        .order_by(Match.id)
    )  # fmt: skip
    return query.where(Match.status == status) if status else query


def _row(record: Row[Any], box: Box, keys: dict[str | None, DataKey | None]) -> MatchRecord | None:
    """The match for people; None for a face match whose subject's key is gone (withdrawn)."""
    m, sha, nsfw, prov, loc, key_id, name_enc, bank, submission, frame, x, y, w, h = tuple(record)
    target = bank
    if m.subject_id is not None:
        if key_id not in keys:
            keys[key_id] = box.key(key_id)
        key = keys[key_id]
        if key is None:
            return None
        target = key.open_text(name_enc)
    face_box = (x, y, w, h) if x is not None else None
    return MatchRecord(m.id, m.kind, target, m.subject_id, loc, m.score, m.tier, m.status, m.media_id, sha,
                       face_box, frame or m.frame or 0, nsfw, prov or {}, m.created_at, m.detail, m.hash_id, bank,
                       submission, _note(m, box, keys), m.updated_at, reviewer=m.reviewer,
                       takedown_requested_at=m.takedown_requested_at)  # fmt: skip


def _note(match: Match, box: Box, keys: dict[str | None, DataKey | None]) -> str | None:
    if match.note_enc is None:
        return None
    if match.note_key_id not in keys:
        keys[match.note_key_id] = box.key(match.note_key_id)
    key = keys[match.note_key_id]
    return key.open_text(match.note_enc) if key is not None else None


def set_status(session: Session, box: Box, match_id: int, status: str, *, actor: str, note: str | None = None) -> None:
    """A review decision, with an optional note (sealed with the key of whom the match concerns, so it goes with
    their withdrawal). Setting the state a match is in, without a note, changes nothing and audits nothing."""
    _check_status(status)
    match = session.get(Match, match_id, with_for_update=True)
    if match is None:
        raise NotFound(f"no match {match_id}")
    if match.status == status and note is None:
        return
    _check_move(match, status)
    previous, match.status, match.updated_at, match.reviewer = match.status, status, func.now(), actor
    details: dict[str, Any] = {"from": previous, "reviewer": actor}
    if status in CALIBRATED and previous != status:
        _calibration_pair(session, match, status, actor)
    if note is None:
        audit.record(session, f"match.{status}", "match", match_id, details, actor=actor)
        return
    key = _owner_key(session, box, match)
    match.note_enc, match.note_key_id = key.seal_text(note), key.id
    details["note"] = True
    personal = {"note": note}
    audit.record(session, f"match.{status}", "match", match_id, details, actor=actor, personal=personal, owner=key)


def neighbours(session: Session, match_id: int, status: str) -> tuple[int | None, int | None]:
    """The matches before and after this one in the queue of ``status`` (by id, as lists are ordered)."""
    same = Match.status == status
    before = session.scalar(select(func.max(Match.id)).where(same, Match.id < match_id))
    after = session.scalar(select(func.min(Match.id)).where(same, Match.id > match_id))
    return before, after


def request_takedown(session: Session, match_id: int, *, actor: str) -> bool:
    """The subject asks for a takedown of a match: it is flagged for the reviewers (who draft the notice, since
    they decide what is sent), audited. False if it was asked for already."""
    match = session.get(Match, match_id, with_for_update=True)
    if match is None:
        raise NotFound(f"no match {match_id}")
    if match.takedown_requested_at is not None:
        return False
    match.takedown_requested_at = func.now()
    audit.record(session, "match.takedown_requested", "match", match_id, {}, actor=actor)
    return True


def allowed(status: str) -> tuple[str, ...]:
    """The states a match in ``status`` may move to."""
    _check_status(status)
    return NEXT[status]


def _check_move(match: Match, status: str) -> None:
    """Refuse a move the state machine does not have (a note on the current state is no move)."""
    if status == match.status or status in NEXT[match.status]:
        return
    nexts = ", ".join(NEXT[match.status]) or "none: it is final"
    raise Conflict(f"match {match.id} is {match.status}: it cannot become {status} (next: {nexts})")


def _calibration_pair(session: Session, match: Match, label: str, actor: str) -> None:
    """The decision as a labelled pair without pictures: score, model (or hash algorithm), tier, whom it concerned."""
    if match.subject_id is not None:
        model = session.scalar(select(Subject.model).where(Subject.id == match.subject_id))
    else:
        model = session.scalar(select(ProtectedHash.algorithm).where(ProtectedHash.id == match.hash_id))
    session.add(CalibrationPair(match_id=match.id, kind=match.kind, label=label, score=match.score,
                                model=model or "unknown", tier=match.tier, subject_id=match.subject_id,
                                hash_id=match.hash_id, reviewer=actor))  # fmt: skip


def _owner_key(session: Session, box: Box, match: Match) -> DataKey:
    """The subject's key for a face match, the submission's for a hash match; a key of its own otherwise."""
    key = None
    if match.subject_id is not None:
        key = subject_key(session, box, match.subject_id)
    elif match.hash_id is not None:
        key = submission_key(session, box, match.hash_id)
    return key or box.new_key(session)


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise InvalidInput(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
