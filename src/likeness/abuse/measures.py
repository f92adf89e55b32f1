"""What stands against a caller now: IP blocks (CIDR), account bans and shadow bans, enumeration throttles.

One query per request finds them all; ``abuse_measures`` holds the few rows operators and detectors create, so
it stays small (a lifted or expired row no longer counts, and stays as the record of what was done).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from likeness.abuse.caller import Caller

BLOCK, BAN, SHADOW_BAN = "block", "ban", "shadow_ban"
COORDINATED, ENUMERATION = "coordinated", "enumeration"
KINDS = (BLOCK, BAN, SHADOW_BAN, COORDINATED, ENUMERATION)

_ACTIVE = "m.lifted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > :now)"

_STANDING = text(
    f"""
    SELECT m.id, m.kind, m.expires_at FROM abuse_measures m
    WHERE {_ACTIVE} AND (
        (m.kind = 'block' AND m.network >>= CAST(:ip AS inet))
        OR (m.kind IN ('ban', 'shadow_ban') AND m.account_id = :account)
        OR (m.kind = 'enumeration' AND m.subject IN :keys))
    ORDER BY m.id
    """
).bindparams(bindparam("keys", expanding=True))


@dataclass(frozen=True)
class Standing:
    """The first active measure of each kind against a caller (id, and when it ends)."""

    found: dict[str, tuple[int, datetime | None]]

    def get(self, kind: str) -> tuple[int, datetime | None] | None:
        return self.found.get(kind)


def standing(session: Session, caller: Caller, now: datetime) -> Standing:
    params: dict[str, Any] = {"now": now, "ip": caller.address, "account": caller.account_id, "keys": caller.keys}
    found: dict[str, tuple[int, datetime | None]] = {}
    for measure_id, kind, expires_at in session.execute(_STANDING, params):
        found.setdefault(kind, (measure_id, expires_at))
    return Standing(found)


def active_subject(session: Session, kind: str, subject: str, now: datetime, since: datetime) -> int | None:
    """An active measure of ``kind`` on ``subject`` created after ``since`` (detectors flag a thing once)."""
    sql = text(
        f"SELECT m.id FROM abuse_measures m WHERE m.kind = :kind AND m.subject = :subject AND {_ACTIVE}"
        " AND m.created_at > :since ORDER BY m.id LIMIT 1"
    )
    return session.execute(sql, {"kind": kind, "subject": subject, "now": now, "since": since}).scalar()
