"""Alert rules: where to tell, from which tier up. Targets are sealed with the rule's own data key
(store/crypto.py), or, for a subject-facing rule, with the subject's key: a webhook's URL and HMAC secret, or email
addresses, never reach the database in the clear. Removing an operator's rule shreds its key; withdrawing a subject
deletes their rules and shreds their addresses with the rest of their data."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from likeness.alerts import TIER_RANK
from likeness.errors import InvalidInput, NotFound
from likeness.fetch.guard import Guard
from likeness.registry.subjects import subject_key
from likeness.store import audit
from likeness.store.crypto import DataKey, box_of
from likeness.store.models import AlertRule

CHANNELS = ("webhook", "email")


@dataclass(frozen=True)
class Rule:
    id: int
    channel: str
    min_tier: str
    subject_id: int | None
    digest_s: int
    locations: bool
    target: dict[str, Any]  # webhook: {"url", "secret"}; email: {"to": [...]}

    def shown(self) -> str:
        """The target as listings show it: the webhook's URL without its query, the number of addresses."""
        if self.channel == "webhook":
            return str(self.target["url"]).split("?", 1)[0]
        return f"{len(self.target['to'])} address(es)"


def add_webhook(
    session: Session, url: str, min_tier: str, *, actor: str, secret: str | None = None, **options: Any
) -> tuple[Rule, str]:
    """A webhook rule; returns it and its HMAC secret (given, or made here: shown to the operator once)."""
    Guard(allow_private_networks=True).check_url(url)  # its shape now; its addresses at every send
    secret = secret or secrets.token_urlsafe(32)
    rule = _add(session, "webhook", {"url": url, "secret": secret}, min_tier, actor=actor, **options)
    return rule, secret


def add_email(session: Session, to: list[str], min_tier: str, *, actor: str, **options: Any) -> Rule:
    addresses = [a.strip() for a in to if a.strip()]
    if not addresses or any("@" not in a or any(c in a for c in "\r\n,;<> ") for a in addresses):
        raise InvalidInput("email rules need one or more plain addresses (name@host)")
    return _add(session, "email", {"to": addresses}, min_tier, actor=actor, **options)


def _add(
    session: Session,
    channel: str,
    target: dict[str, Any],
    min_tier: str,
    *,
    actor: str,
    subject_id: int | None = None,
    digest_s: int = 0,
    locations: bool | None = None,
) -> Rule:
    if min_tier not in TIER_RANK:
        raise InvalidInput(f"tier {min_tier!r}: one of {', '.join(TIER_RANK)}")
    # Where-found URLs by default only to an operator's webhook: an email to a subject stays without them.
    with_locations = (channel == "webhook" and subject_id is None) if locations is None else locations
    key = _key_for(session, subject_id)
    row = AlertRule(
        channel=channel,
        min_tier=min_tier,
        subject_id=subject_id,
        key_id=key.id,
        target_enc=key.seal_json(target),
        digest_s=max(0, int(digest_s)),
        locations=with_locations,
    )
    session.add(row)
    session.flush()
    details = {"channel": channel, "min_tier": min_tier, "subject_id": subject_id, "digest_s": row.digest_s}
    audit.record(session, "alert_rule.created", "alert_rule", row.id, details, actor=actor)
    return _rule(session, row)


def _key_for(session: Session, subject_id: int | None) -> DataKey:
    """A subject-facing rule's address is the subject's personal data: sealed with their key, so withdrawing them
    shreds it with the rest. An operator's rule gets a key of its own."""
    box = box_of(session)
    if subject_id is None:
        return box.new_key(session)
    key = subject_key(session, box, subject_id)
    if key is None:
        raise NotFound(f"no subject {subject_id}")
    return key


def list_rules(session: Session) -> list[Rule]:
    return [_rule(session, row) for row in session.scalars(select(AlertRule).order_by(AlertRule.id))]


def get_rule(session: Session, rule_id: int) -> Rule:
    row = session.get(AlertRule, rule_id)
    if row is None:
        raise NotFound(f"no alert rule {rule_id}")
    return _rule(session, row)


def remove_rule(session: Session, rule_id: int, *, actor: str) -> None:
    """Delete the rule (its pending deliveries go with it) and shred its key once the transaction commits."""
    row = session.get(AlertRule, rule_id)
    if row is None:
        raise NotFound(f"no alert rule {rule_id}")
    key_id, own_key = row.key_id, row.subject_id is None  # a subject's key stays: it seals their other data
    session.execute(delete(AlertRule).where(AlertRule.id == rule_id))
    audit.record(session, "alert_rule.removed", "alert_rule", rule_id, {"channel": row.channel}, actor=actor)
    if not own_key:
        return
    box = box_of(session)
    # after the commit only: a rolled-back removal must leave a rule whose target still opens
    event.listen(session, "after_commit", lambda _s: box.shred(key_id), once=True)


def _rule(session: Session, row: AlertRule) -> Rule:
    key = box_of(session).key(row.key_id)
    target = key.open_json(row.target_enc) if key is not None else {}
    return Rule(row.id, row.channel, row.min_tier, row.subject_id, row.digest_s, row.locations, target)
