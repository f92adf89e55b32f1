"""Review and report, for the shells: matches with every place their media was seen, media, decisions."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqlalchemy.orm import Session

from likeness.cases import evidence, report, review
from likeness.cases.blobs import FileBlobStore
from likeness.cases.review import MatchRecord, MediaRecord, MediaSummary, SightingRecord
from likeness.errors import LikenessError, NotFound
from likeness.log import get_logger
from likeness.registry import subjects as registry_subjects
from likeness.services.app import App
from likeness.sources import MediaRef, read_file

log = get_logger(__name__)

__all__ = ["MatchRecord", "MediaRecord", "MediaSummary", "SightingRecord", "get_match", "list_matches"]


def list_matches(
    app: App,
    *,
    status: str | None = None,
    subjects: set[int] | None = None,
    kind: str | None = None,
    media_id: int | None = None,
    tier: str | None = None,
    takedown_requested: bool | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[MatchRecord]:
    """Matches oldest first, a page of ``limit`` (None: all). ``subjects`` restricts to face matches of those
    subjects (a subject account's view: hash matches excluded)."""
    with app.store.transaction() as session:
        return review.list_matches(
            session, app.store.box, status, media_id, subjects=subjects, kind=kind, tier=tier,
            takedown_requested=takedown_requested, limit=limit, offset=offset,
        )  # fmt: skip


def get_match(app: App, match_id: int) -> MatchRecord:
    with app.store.transaction() as session:
        return review.get_match(session, app.store.box, match_id)


def get_media(app: App, media_id: int) -> MediaRecord:
    with app.store.transaction() as session:
        return review.get_media(session, app.store.box, media_id)


def media_summary(app: App, media_id: int | None = None) -> list[MediaSummary]:
    """Per media: matched subjects and banks, max NSFW, the frames that matched, vPDQ video verdicts."""
    with app.store.transaction() as session:
        return review.summarise(review.list_matches(session, app.store.box, media_id=media_id))


def set_status(app: App, match_id: int, status: str, *, actor: str, note: str | None = None) -> MatchRecord:
    """A review decision. Confirming a match seen at a URL freezes its evidence then (``evidence.capture_on_confirm``):
    what a page shows today may be gone tomorrow."""
    before = get_match(app, match_id).status
    with app.store.transaction() as session:
        review.set_status(session, app.store.box, match_id, status, actor=actor, note=note)
    record = get_match(app, match_id)
    newly = status == "confirmed" and before != "confirmed"
    if newly and app.settings.evidence.capture_on_confirm and on_the_web(record):
        _freeze(app, match_id, actor)
    return record


def on_the_web(record: MatchRecord) -> bool:
    """Seen at a URL somewhere (the capture freezes the first such place: cases/evidence.py ``target``)."""
    return any(s.url.startswith(("http://", "https://")) for s in record.sightings)


def _freeze(app: App, match_id: int, actor: str) -> None:
    """A capture that fails leaves the decision standing: it is logged, and ``likeness cases capture`` retries."""
    from likeness.services import evidence as frozen  # the browser's stack, only when a capture is due

    try:
        frozen.capture(app, match_id, actor=actor)
    except LikenessError as exc:
        log.warning("evidence.capture_failed", match_id=match_id, error=str(exc))


def neighbours(app: App, match_id: int, status: str) -> tuple[int | None, int | None]:
    with app.store.transaction() as session:
        return review.neighbours(session, match_id, status)


def request_takedown(app: App, match_id: int, *, actor: str) -> MatchRecord:
    """The subject asks for a takedown: flagged for the reviewers, audited (asking twice changes nothing)."""
    with app.store.transaction() as session:
        review.request_takedown(session, match_id, actor=actor)
    return get_match(app, match_id)


def write_report(app: App, out: Path, status: str | None = None) -> int:
    with app.store.transaction() as session:
        html, count = report.render(session, app.store.box, app.settings, _reader(app, session), status)
    report.write(out, html)
    return count


def found_crop(app: App, match_id: int, *, clear: bool = False) -> tuple[bytes | None, str]:
    """The face found by a match (or the picture a hash matched) as a JPEG, blurred when sensitive unless
    ``clear``; None and why when its source cannot be read now."""
    with app.store.transaction() as session:
        row = review.get_match(session, app.store.box, match_id)
        return report.found_jpeg(row, app.settings, _reader(app, session), clear=clear)


def reference_crop(app: App, subject_id: int) -> bytes | None:
    """The subject's best reference face as a JPEG (None when the operator keeps no crops)."""
    with app.store.transaction() as session:
        return registry_subjects.reference_crop(session, app.store.box, subject_id)


def _reader(app: App, session: Session) -> report.Reader:
    blobs = FileBlobStore(app.settings.home / "evidence")

    def read(row: review.MatchRow) -> bytes:
        """What a case froze (``likeness cases capture``), else a local file read as a scan reads it; a URL is
        never fetched again: a source taken down since would leave nothing."""
        frozen = evidence.frozen_media(session, blobs, row.id)
        if frozen is not None and hashlib.sha256(frozen).hexdigest() == row.sha256:  # not a page changed since
            return frozen
        if row.location.startswith(("http://", "https://")):
            raise NotFound(f"no frozen evidence (likeness cases capture {row.id})")
        return read_file(MediaRef(row.location, raw_path=os.fsencode(row.location)), app.settings.media.max_bytes)

    return read
