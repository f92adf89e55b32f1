"""The append-only, hash-chained audit log. Call ``record`` inside the transaction that makes the change."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from likeness.store.models import AuditEvent

GENESIS = "0" * 64
_CHAIN_LOCK = 7_243_020


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: int | None,
    details: dict[str, Any] | None = None,
    actor: str = "cli",
) -> AuditEvent:
    # Serialise writers so the chain stays linear; the lock is released at commit or rollback.
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or GENESIS
    body = {"actor": actor, "action": action, "entity": entity, "entity_id": entity_id, "details": details or {}}
    event = AuditEvent(prev_hash=prev, hash=chain_hash(prev, body), **body)
    session.add(event)
    session.flush()
    return event


def chain_hash(prev: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev + json.dumps(body, sort_keys=True, default=str)).encode()).hexdigest()


def verify(session: Session) -> int | None:
    """The id of the first event whose hash does not follow from its predecessor, or None if intact."""
    prev = GENESIS
    for event in session.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        body = {k: getattr(event, k) for k in ("actor", "action", "entity", "entity_id", "details")}
        if event.prev_hash != prev or event.hash != chain_hash(prev, body):
            return event.id
        prev = event.hash
    return None


def registry_version(session: Session) -> int:
    """Changes with every subject, protected hash or bank change; in-memory indexes compare it to reload."""
    return (
        session.scalar(
            select(AuditEvent.id)
            .where(AuditEvent.entity.in_(("subject", "hash", "bank")))
            .order_by(AuditEvent.id.desc())
            .limit(1)
        )
        or 0
    )
