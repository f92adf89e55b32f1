"""What operators do (``likeness abuse``, the API's admin routes): list measures, lift one, block an address or
network, ban an account. Each action is logged in the abuse log with its actor, and a ban (a change to an
account) also in the audit chain."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from likeness.abuse import measures, record
from likeness.errors import Conflict, InvalidInput, NotFound
from likeness.store import audit
from likeness.store.models import AbuseHeld, AbuseLogEntry, AbuseMeasure, Account


@dataclass(frozen=True)
class Measure:
    id: int
    kind: str
    target: str  # the network, 'account:<id>' or the flagged subject
    reason: str
    actor: str
    created_at: datetime
    expires_at: datetime | None
    lifted_at: datetime | None
    lifted_by: str | None
    active: bool
    detail: dict[str, Any]


def list_measures(
    session: Session, *, kind: str | None = None, include_inactive: bool = False, at: datetime | None = None
) -> list[Measure]:
    """Measures, newest first; only active ones unless ``include_inactive``."""
    if kind is not None and kind not in measures.KINDS:
        raise InvalidInput(f"no such kind {kind!r}: one of {', '.join(measures.KINDS)}")
    now = record.now(session, at)
    query = select(AbuseMeasure).order_by(AbuseMeasure.id.desc())
    if kind is not None:
        query = query.where(AbuseMeasure.kind == kind)
    found = [_measure(row, now) for row in session.scalars(query)]
    return found if include_inactive else [m for m in found if m.active]


def _measure(row: AbuseMeasure, now: datetime) -> Measure:
    active = row.lifted_at is None and (row.expires_at is None or row.expires_at > now)
    target = row.network or (f"account:{row.account_id}" if row.kind in (measures.BAN, measures.SHADOW_BAN) else "")
    return Measure(
        row.id,
        row.kind,
        str(target or row.subject or ""),
        row.reason,
        row.actor,
        row.created_at,
        row.expires_at,
        row.lifted_at,
        row.lifted_by,
        active,
        dict(row.detail or {}),
    )


def lift(session: Session, measure_id: int, *, actor: str, at: datetime | None = None) -> Measure:
    """End a block, ban or flag now (an enumeration throttle ends with its flag)."""
    now = record.now(session, at)
    row = session.get(AbuseMeasure, measure_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no abuse measure {measure_id}")
    if row.lifted_at is not None:
        raise Conflict(f"abuse measure {measure_id} was already lifted by {row.lifted_by}")
    session.execute(update(AbuseMeasure).where(AbuseMeasure.id == measure_id).values(lifted_at=now, lifted_by=actor))
    record.write(session, now, "lift", row.kind, actor=actor, measure_id=measure_id)
    if row.account_id is not None and row.kind in (measures.BAN, measures.SHADOW_BAN):
        audit.record(session, "abuse.unban", "account", row.account_id, {"measure": measure_id}, actor=actor)
    session.refresh(row)
    return _measure(row, now)


def block(
    session: Session,
    network: str,
    *,
    actor: str,
    duration_s: float | None = None,
    reason: str = "blocked by an operator",
    at: datetime | None = None,
) -> int:
    """Refuse every request from an address or network (CIDR), for ``duration_s`` or until lifted."""
    try:
        parsed = ipaddress.ip_network(network, strict=False)
    except ValueError as exc:
        raise InvalidInput(f"not an IP address or network: {network!r}") from exc
    if duration_s is not None and duration_s <= 0:
        raise InvalidInput("a block lasts a positive time")
    now = record.now(session, at)
    expires = now + timedelta(seconds=duration_s) if duration_s is not None else None
    values = {"kind": measures.BLOCK, "network": str(parsed), "reason": reason, "actor": actor}
    return _create(session, values, now, expires, f"block {parsed}")


def ban(
    session: Session,
    account_id: int,
    *,
    actor: str,
    shadow: bool,
    reason: str = "banned by an operator",
    at: datetime | None = None,
) -> int:
    """Ban an account: refused outright, or (``shadow``) answered as usual while its submissions are held."""
    if session.get(Account, account_id) is None:
        raise NotFound(f"no account {account_id}")
    kind = measures.SHADOW_BAN if shadow else measures.BAN
    now = record.now(session, at)
    values = {"kind": kind, "account_id": account_id, "reason": reason, "actor": actor}
    measure_id = _create(session, values, now, None, kind)
    audit.record(session, f"abuse.{kind}", "account", account_id, {"measure": measure_id}, actor=actor)
    return measure_id


def _create(session: Session, values: dict[str, Any], now: datetime, expires: datetime | None, what: str) -> int:
    statement = insert(AbuseMeasure).values(**values, created_at=now, expires_at=expires, detail={})
    measure_id = int(session.execute(statement.returning(AbuseMeasure.id)).scalar_one())
    record.write(session, now, values["kind"], what, actor=values["actor"], measure_id=measure_id)
    return measure_id


def held(session: Session, *, limit: int = 100) -> list[AbuseHeld]:
    """Shadow-held submissions, newest first, for review."""
    return list(session.scalars(select(AbuseHeld).order_by(AbuseHeld.id.desc()).limit(limit)))


def log(session: Session, *, limit: int = 100) -> list[AbuseLogEntry]:
    """The abuse log, newest first."""
    return list(session.scalars(select(AbuseLogEntry).order_by(AbuseLogEntry.id.desc()).limit(limit)))
