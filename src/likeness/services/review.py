"""Review and report, for the shells."""

from __future__ import annotations

import os
from pathlib import Path

from likeness.cases import report, review
from likeness.fetch import Fetcher
from likeness.services.app import App
from likeness.sources import MediaRef, read_file


def list_matches(app: App, status: str | None = None) -> list[review.MatchRow]:
    with app.store.transaction() as session:
        return review.list_matches(session, app.store.box, status)


def media_summary(app: App, media_id: int | None = None) -> list[review.MediaSummary]:
    """Per media: matched subjects and banks, max NSFW, the frames that matched, vPDQ video verdicts."""
    with app.store.transaction() as session:
        return review.summarise(review.list_matches(session, app.store.box, media_id=media_id))


def set_status(app: App, match_id: int, status: str) -> None:
    with app.store.transaction() as session:
        review.set_status(session, match_id, status)


def write_report(app: App, out: Path, status: str | None = None) -> int:
    settings = app.settings
    with Fetcher(settings.fetch, settings.media.max_bytes) as fetcher, app.store.transaction() as session:

        def read(location: str) -> bytes:
            """URLs through the fetch layer; local paths as regular files only, like a scan reads them."""
            if location.startswith(("http://", "https://")):
                return fetcher.get(location)
            return read_file(MediaRef(location, raw_path=os.fsencode(location)), settings.media.max_bytes)

        html, count = report.render(session, app.store.box, settings, read, status)
    report.write(out, html)
    return count
