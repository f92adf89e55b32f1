"""Crawl checkpoints: each source's cursor and the items it has dealt with.

An item is recorded in the same transaction as its media (``record``), and the cursor moves on only after
every item of its page is recorded, so a crawl killed at any point resumes with nothing lost or repeated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.store.models import CrawlItem, CrawlState


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
    state = session.get(CrawlState, source)
    assert state is not None
    state.pages += 1
    state.items += items
    state.last_run_at = func.now()
    if backfill:
        state.cursor = cursor
        state.backfilled = state.backfilled or cursor is None


def finish(session: Session, source: str, error: str | None) -> None:
    state = session.get(CrawlState, source)
    assert state is not None
    state.last_run_at, state.last_error = func.now(), error


def dealt_with(session: Session, source: str, keys: list[str]) -> set[str]:
    """Which of these items are done or skipped (failed ones are not: they are retried)."""
    if not keys:
        return set()
    query = select(CrawlItem.key).where(
        CrawlItem.source == source, CrawlItem.key.in_(keys), CrawlItem.status != "failed"
    )
    return set(session.scalars(query))


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
    values = {"status": status, "media_id": media_id, "url": url, "page_url": page_url, "error": error, "meta": meta}
    stmt = insert(CrawlItem).values(source=source, key=key, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=["source", "key"], set_=values))


def failed(session: Session, source: str, limit: int = 1000) -> list[tuple[str, str, str | None]]:
    """(key, url, page url) of items whose fetch failed, to retry first."""
    query = select(CrawlItem.key, CrawlItem.url, CrawlItem.page_url).where(
        CrawlItem.source == source, CrawlItem.status == "failed"
    )
    return [(r.key, r.url, r.page_url) for r in session.execute(query.order_by(CrawlItem.seen_at).limit(limit))]
