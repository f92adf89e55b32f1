"""Review and report, for the shells: matches with every place their media was seen, media, decisions."""

from __future__ import annotations

import os
from pathlib import Path

from likeness.cases import evidence, report, review
from likeness.cases.blobs import FileBlobStore
from likeness.cases.review import MatchRecord, MediaRecord, MediaSummary, SightingRecord
from likeness.errors import LikenessError, NotFound
from likeness.log import get_logger
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
    limit: int | None = 50,
    offset: int = 0,
) -> list[MatchRecord]:
    """Matches oldest first, a page of ``limit`` (None: all). ``subjects`` restricts to face matches of those
    subjects (a subject account's view: hash matches excluded)."""
    with app.store.transaction() as session:
        return review.list_matches(
            session, app.store.box, status, media_id, subjects=subjects, kind=kind, limit=limit, offset=offset
        )


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
    if newly and app.settings.evidence.capture_on_confirm and _on_the_web(record):
        _freeze(app, match_id, actor)
    return record


def _on_the_web(record: MatchRecord) -> bool:
    return record.location.startswith(("http://", "https://"))


def _freeze(app: App, match_id: int, actor: str) -> None:
    """A capture that fails leaves the decision standing: it is logged, and ``likeness cases capture`` retries."""
    from likeness.services import evidence as frozen  # the browser's stack, only when a capture is due

    try:
        frozen.capture(app, match_id, actor=actor)
    except LikenessError as exc:
        log.warning("evidence.capture_failed", match_id=match_id, error=str(exc))


def write_report(app: App, out: Path, status: str | None = None) -> int:
    settings = app.settings
    blobs = FileBlobStore(settings.home / "evidence")
    with app.store.transaction() as session:

        def read(row: review.MatchRow) -> bytes:
            """What a case froze (``likeness cases capture``), else a local file read as a scan reads it; a URL is
            never fetched again: a source taken down since would leave nothing."""
            frozen = evidence.frozen_media(session, blobs, row.id)
            if frozen is not None:
                return frozen
            if row.location.startswith(("http://", "https://")):
                raise NotFound(f"no frozen evidence (likeness cases capture {row.id})")
            return read_file(MediaRef(row.location, raw_path=os.fsencode(row.location)), settings.media.max_bytes)

        html, count = report.render(session, app.store.box, settings, read, status)
    report.write(out, html)
    return count
