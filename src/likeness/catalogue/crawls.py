"""Crawl checkpoints: each source's cursor and the items it has dealt with.

An item is recorded in the same transaction as its media (``record``), and the cursor moves on only after
every item of its page is recorded, so a crawl killed at any point resumes with nothing lost or repeated.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.store.models import CrawlItem, CrawlState
from likeness.text import clean, clean_json

_KEY_CHARS = 512  # a btree entry holds ~2.7 KB: longer keys (a URL list's URLs) are stored by their digest


def bounded(key: str) -> str:
    """A source name or item key as stored: itself, or ``sha256:<hex>`` when long or not clean text."""
    if len(key) <= _KEY_CHARS and clean(key) == key:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    source: str
    cursor: str | None
    backfilled: bool
    pages: int
    items: int
    failed: int
    last_run_at: datetime | None
    last_error: str | None


def checkpoint(session: Session, source: str) -> Checkpoint:
    source = bounded(source)
    session.execute(insert(CrawlState).values(source=source).on_conflict_do_nothing())
    return next(c for c in checkpoints(session, source) if c.source == source)


def checkpoints(session: Session, source: str | None = None) -> list[Checkpoint]:
    failed = (
        select(CrawlItem.source, func.count().label("n"))
        .where(CrawlItem.status == "failed")
        .group_by(CrawlItem.source)
        .subquery()
    )
    query = select(CrawlState, failed.c.n).outerjoin(failed, failed.c.source == CrawlState.source)
    if source is not None:
        query = query.where(CrawlState.source == source)
    return [
        Checkpoint(s.source, s.cursor, s.backfilled, s.pages, s.items, n or 0, s.last_run_at, s.last_error)
        for s, n in session.execute(query.order_by(CrawlState.source))
    ]


def advance(session: Session, source: str, cursor: str | None, *, backfill: bool, items: int) -> None:
    """A page is done: count it and, on the backfill walk, move the cursor (None: the backfill reached the end)."""
    state = session.get(CrawlState, bounded(source))
    assert state is not None
    state.pages += 1
    state.items += items
    state.last_run_at = func.now()
    if backfill:
        state.cursor = cursor
        state.backfilled = state.backfilled or cursor is None


def finish(session: Session, source: str, error: str | None) -> None:
    state = session.get(CrawlState, bounded(source))
    assert state is not None
    state.last_run_at, state.last_error = func.now(), clean(error, 4000) if error else None


def dealt_with(session: Session, source: str, keys: list[str]) -> set[str]:
    """Which of these items are done or skipped (failed ones are not: they are retried)."""
    stored = {bounded(k): k for k in keys}
    found: set[str] = set()
    names = list(stored)
    for start in range(0, len(names), 1000):  # a query holds at most 65,535 parameters
        query = select(CrawlItem.key).where(
            CrawlItem.source == bounded(source),
            CrawlItem.key.in_(names[start : start + 1000]),
            CrawlItem.status != "failed",
        )
        found.update(stored[k] for k in session.scalars(query))
    return found


def record(
    session: Session,
    source: str,
    key: str,
    status: str,
    url: str,
    *,
    media_id: int | None = None,
    page_url: str | None = None,
    error: str | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    values = {
        "status": status,
        "media_id": media_id,
        "url": clean(url, 1 << 16),
        "page_url": clean(page_url, 1 << 16) if page_url else None,
        "error": clean(error, 4000) if error else None,
        "meta": clean_json(meta) if meta is not None else None,
    }
    stmt = insert(CrawlItem).values(source=bounded(source), key=bounded(key), **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["source", "key"], set_=values))


def failed(session: Session, source: str, limit: int = 1000) -> list[tuple[str, str, str | None]]:
    """(key, url, page url) of items whose fetch failed, to retry first."""
    query = select(CrawlItem.key, CrawlItem.url, CrawlItem.page_url).where(
        CrawlItem.source == bounded(source), CrawlItem.status == "failed"
    )
    return [(r.key, r.url, r.page_url) for r in session.execute(query.order_by(CrawlItem.seen_at).limit(limit))]
