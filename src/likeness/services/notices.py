"""Takedown notices, for the shells: draft, mark sent, record the answer, re-check through the fetch layer."""

from __future__ import annotations

from datetime import datetime

from likeness.cases import notices
from likeness.cases.notices import CheckResult, Draft, NoticeRecord
from likeness.services import fetching
from likeness.services.app import App

__all__ = ["CheckResult", "Draft", "NoticeRecord", "check", "draft", "list_notices", "mark_sent", "respond"]


def draft(
    app: App,
    match_id: int,
    kind: str,
    *,
    actor: str,
    ground: str = "d",
    work: str | None = None,
    evidence: list[str] | None = None,
) -> Draft:
    with app.store.transaction() as session:
        return notices.draft(
            session, app.store.box, app.settings, match_id, kind, actor=actor, ground=ground, work=work,
            evidence=evidence,
        )  # fmt: skip


def mark_sent(app: App, notice_id: int, channel: str, *, actor: str) -> NoticeRecord:
    with app.store.transaction() as session:
        return notices.mark_sent(session, app.store.box, app.settings, notice_id, channel, actor=actor)


def respond(app: App, notice_id: int, response: str, *, actor: str) -> NoticeRecord:
    with app.store.transaction() as session:
        return notices.record_response(session, app.store.box, notice_id, response, actor=actor)


def list_notices(app: App, status: str | None = None, match_id: int | None = None) -> list[NoticeRecord]:
    with app.store.transaction() as session:
        found = notices.list_notices(session, app.store.box, status)
    return [n for n in found if match_id is None or n.match_id == match_id]


def check(app: App, notice_id: int | None = None, *, actor: str, now: datetime | None = None) -> list[CheckResult]:
    """Re-read the location of one notice, or of every sent one not yet seen gone; each in its own transaction,
    so one slow or failing location does not hold back what the others found."""
    with app.store.transaction() as session:
        ids = [notice_id] if notice_id is not None else notices.open_ids(session)
    results = []
    with fetching.fetcher(app.settings, app.store) as fetcher:
        for nid in ids:
            with app.store.transaction() as session:
                results.append(
                    notices.check(session, app.store.box, app.settings, nid, fetcher.get, actor=actor, now=now)
                )
    return results
