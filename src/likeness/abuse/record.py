"""The append-only abuse log and the clock every decision is taken by.

Time comes from the database (``clock_timestamp()``), never from the process: several API processes on several
machines then agree on when a bucket was last spent. Tests pass ``at`` instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from likeness.abuse.caller import Caller
from likeness.store.models import AbuseLogEntry

SYSTEM = "system"  # the actor of automatic decisions; operators' actions carry theirs ("cli", "user:<id>")


def now(session: Session, at: datetime | None = None) -> datetime:
    """``at`` when given (tests, replays), else the database's clock at this moment (not the transaction's start:
    a long transaction must not refill a bucket from the past)."""
    if at is not None:
        return at
    return session.execute(select(func.clock_timestamp())).scalar_one()


def write(
    session: Session,
    at: datetime,
    decision: str,
    reason: str,
    *,
    actor: str = SYSTEM,
    caller: Caller | None = None,
    measure_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One row of the abuse log, in the caller's transaction."""
    session.execute(
        insert(AbuseLogEntry).values(
            at=at,
            actor=actor,
            decision=decision,
            reason=reason,
            account_id=caller.account_id if caller else None,
            token_id=caller.token_id if caller else None,
            ip=caller.ip if caller else None,
            measure_id=measure_id,
            detail=detail or {},
        )
    )
