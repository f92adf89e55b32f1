"""Sending what is due: per rule, its pending deliveries, under a lock on the rule's row (two senders never send
one rule's deliveries twice; a sender finding the rule locked leaves it to the other).

Webhooks get one signed POST per event; email rules one digest per run, and at most one per ``digest_s``. Each send
is retried with exponential backoff (tenacity, ``alerts.retries``); a delivery whose sends keep failing is tried
again at the next run, and after ``alerts.max_attempts`` runs is marked failed with its last error. Matches put on
hold (a hash flood, match/hashes.py) wait until they are released.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from likeness import log
from likeness.alerts import mail, webhook
from likeness.alerts.rules import Rule, _rule, get_rule
from likeness.errors import FetchError
from likeness.settings import Settings
from likeness.store import Store
from likeness.store.models import AlertDelivery, AlertRule, HoneypotPlant, Match, Sighting

_log = log.get_logger(__name__)


@dataclass
class Sent:
    sent: int = 0
    failed: int = 0  # sends that failed this run (retried at the next, until max_attempts)
    waiting: int = 0  # held back by an email rule's digest window

    def __iadd__(self, other: Sent) -> Sent:
        self.sent += other.sent
        self.failed += other.failed
        self.waiting += other.waiting
        return self


def send_due(store: Store, settings: Settings) -> Sent:
    """Send every rule's pending deliveries (up to ``alerts.batch`` each)."""
    if not settings.alerts.enabled:
        return Sent()
    with store.transaction() as session:
        rule_ids = session.scalars(
            select(AlertDelivery.rule_id).where(AlertDelivery.status == "pending").distinct()
        ).all()
    total = Sent()
    for rule_id in rule_ids:
        total += _send_rule(store, rule_id, settings)
    return total


def send_test(store: Store, rule_id: int, settings: Settings) -> None:
    """A test event to one rule, now, recorded nowhere; raises FetchError when it does not get through."""
    with store.transaction() as session:
        rule = get_rule(session, rule_id)
    event = {"event": "test", "rule_id": rule_id, "at": datetime.now(UTC).isoformat()}
    if rule.channel == "webhook":
        webhook.post(rule.target["url"], rule.target["secret"], event, 0, settings)
    else:
        message = mail.compose(settings.alerts.smtp_from, rule.target["to"], [])
        message.replace_header("Subject", "likeness: test alert")
        mail.send(message, settings.alerts)


def _send_rule(store: Store, rule_id: int, settings: Settings) -> Sent:
    now = datetime.now(UTC)
    with store.transaction() as session:
        row = session.scalar(select(AlertRule).where(AlertRule.id == rule_id).with_for_update(skip_locked=True))
        if row is None:
            return Sent()
        pending = _pending(session, rule_id, settings.alerts.batch)
        if pending and _in_digest_window(row, now):
            return Sent(waiting=len(pending))
        rule = _rule(session, row)
        events = [_event(session, d, rule) for d in pending]
        errors = _send(rule, pending, events, settings)
        return _record(row, pending, errors, now, settings.alerts.max_attempts)


def _pending(session: Session, rule_id: int, limit: int) -> list[AlertDelivery]:
    query = (
        select(AlertDelivery)
        .outerjoin(Match, Match.id == AlertDelivery.match_id)
        .where(AlertDelivery.rule_id == rule_id, AlertDelivery.status == "pending")
        .where(or_(AlertDelivery.match_id.is_(None), Match.status != "on_hold"))
        .order_by(AlertDelivery.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def _in_digest_window(row: AlertRule, now: datetime) -> bool:
    if row.channel != "email" or not row.digest_s or row.last_sent_at is None:
        return False
    return (now - row.last_sent_at).total_seconds() < row.digest_s


def _send(
    rule: Rule, pending: list[AlertDelivery], events: list[dict[str, Any]], settings: Settings
) -> list[str | None]:
    """The error of each delivery's send (None: sent)."""
    if not pending:
        return []
    if not rule.target:
        return ["the rule's key is gone: its target cannot be read"] * len(pending)
    if rule.channel == "webhook":
        return _webhooks(rule, pending, events, settings)
    message = mail.compose(settings.alerts.smtp_from, rule.target["to"], events)
    return [_retried(partial(mail.send, message, settings.alerts), settings)] * len(pending)


def _webhooks(
    rule: Rule, pending: list[AlertDelivery], events: list[dict[str, Any]], settings: Settings
) -> list[str | None]:
    """One POST per event, in order; after a failure the rest wait for the next run (``_LATER``), so a receiver
    that is down costs one delivery's retries per run, not every delivery's."""
    url, secret = rule.target["url"], rule.target["secret"]
    errors: list[str | None] = []
    for delivery, event in zip(pending, events, strict=True):
        failed = errors and errors[-1] is not None
        errors.append(
            _LATER if failed else _retried(partial(webhook.post, url, secret, event, delivery.id, settings), settings)
        )
    return errors


_LATER = "not tried: an earlier delivery to this webhook failed in the same run"


def _retried(send: Callable[[], None], settings: Settings) -> str | None:
    retrying = Retrying(
        retry=retry_if_exception_type(FetchError),
        stop=stop_after_attempt(max(1, settings.alerts.retries)),
        wait=wait_exponential(multiplier=settings.alerts.backoff_s, max=settings.alerts.max_backoff_s),
        reraise=True,
    )
    try:
        retrying(send)
    except FetchError as exc:
        return str(exc)[:2000]
    return None


def _record(
    row: AlertRule, pending: list[AlertDelivery], errors: list[str | None], now: datetime, max_attempts: int
) -> Sent:
    done = Sent()
    for delivery, error in zip(pending, errors, strict=True):
        if error is _LATER:
            continue
        delivery.attempts += 1
        if error is None:
            delivery.status, delivery.sent_at, delivery.last_error = "sent", now, None
            done.sent += 1
            continue
        delivery.last_error = error
        done.failed += 1
        _log.warning("alert delivery failed", delivery=delivery.id, attempts=delivery.attempts, error=error)
        if delivery.attempts >= max_attempts:
            delivery.status = "failed"
    if done.sent:
        row.last_sent_at = now
    return done


def _event(session: Session, delivery: AlertDelivery, rule: Rule) -> dict[str, Any]:
    if delivery.plant_id is not None:
        plant = session.get(HoneypotPlant, delivery.plant_id)
        assert plant is not None
        info = {"id": plant.id, "honeypot_id": plant.honeypot_id, "due_at": plant.due_at.isoformat()}
        return {"event": "honeypot_missed", "delivery_id": delivery.id, "plant": info}
    match = session.get(Match, delivery.match_id)
    assert match is not None
    return {"event": "match", "delivery_id": delivery.id, "match": _match(session, match, rule.locations)}


def _match(session: Session, match: Match, locations: bool) -> dict[str, Any]:
    """What may be told of a match: ids, kind, tier, score and, if asked for, the http(s) URLs it was seen at."""
    info: dict[str, Any] = {
        "id": match.id,
        "kind": match.kind,
        "tier": match.tier,
        "score": round(match.score, 4),
        "subject_id": match.subject_id,
        "hash_id": match.hash_id,
        "media_id": match.media_id,
        "created_at": match.created_at.isoformat(),
    }
    if locations:
        info["locations"] = _urls(session, match.media_id)
    return info


def _urls(session: Session, media_id: int) -> list[str]:
    rows = session.execute(select(Sighting.location, Sighting.page_url).where(Sighting.media_id == media_id)).all()
    urls = {u for row in rows for u in row if u and u.startswith(("http://", "https://"))}
    return sorted(urls)[:20]
