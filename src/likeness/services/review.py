"""Review and report, for the shells: matches with every place their media was seen, media, decisions."""

from __future__ import annotations

import os
from pathlib import Path

from likeness.cases import report, review
from likeness.cases.review import MatchRecord, MediaRecord, MediaSummary, SightingRecord
from likeness.services import fetching
from likeness.services.app import App
from likeness.sources import MediaRef, read_file

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
    with app.store.transaction() as session:
        review.set_status(session, app.store.box, match_id, status, actor=actor, note=note)
    return get_match(app, match_id)


def write_report(app: App, out: Path, status: str | None = None) -> int:
    settings = app.settings
    with fetching.fetcher(settings, app.store) as fetcher, app.store.transaction() as session:

        def read(location: str) -> bytes:
            """URLs through the fetch layer; local paths as regular files only, like a scan reads them."""
            if location.startswith(("http://", "https://")):
                return fetcher.get(location)
            return read_file(MediaRef(location, raw_path=os.fsencode(location)), settings.media.max_bytes)

        html, count = report.render(session, app.store.box, settings, read, status)
    report.write(out, html)
    return count
