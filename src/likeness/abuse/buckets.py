"""Token buckets in PostgreSQL, so that every API process spends from the same bucket.

One upsert refills the bucket for the time since it was last touched, spends ``cost`` when there is enough and
says whether it did: the row lock makes concurrent spends from several processes serialise, and no process keeps
any state of its own. ``greatest(updated_at, now)`` keeps the clock from running backwards when two processes'
clocks (or transactions) interleave.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

_LEVEL = "least(:cap, b.tokens + :rate * greatest(0, extract(epoch FROM :now - b.updated_at)))"

_SPEND = text(
    f"""
    INSERT INTO abuse_buckets AS b (key, tokens, ok, updated_at)
    VALUES (:key, CASE WHEN :cap >= :cost THEN :cap - :cost ELSE :cap END, :cap >= :cost, :now)
    ON CONFLICT (key) DO UPDATE SET
        tokens = CASE WHEN {_LEVEL} >= :cost THEN {_LEVEL} - :cost ELSE {_LEVEL} END,
        ok = {_LEVEL} >= :cost,
        updated_at = greatest(b.updated_at, :now)
    RETURNING tokens, ok
    """
)


@dataclass(frozen=True)
class Spent:
    ok: bool
    retry_after: float  # seconds until ``cost`` would be there; 0 when ``ok``


def spend(session: Session, key: str, *, rate: float, cap: float, cost: float, now: datetime) -> Spent:
    """Spend ``cost`` from bucket ``key`` (``cap`` tokens at most, refilled at ``rate`` a second)."""
    cap = max(cap, 1.0)
    cost = min(cost, cap)  # a batch dearer than a full bucket costs the full bucket, not a refusal forever
    params = {"key": key, "rate": rate, "cap": cap, "cost": cost, "now": now}
    tokens, ok = session.execute(_SPEND, params).one()
    return Spent(True, 0.0) if ok else Spent(False, max(cost - float(tokens), 0.0) / rate)
