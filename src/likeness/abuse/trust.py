"""Trust scores (0-100) per account and per IP: lowered by rejected inputs, recovered lazily.

A row holds the score as of ``updated_at``; the score now is that plus ``recovery_per_hour`` for every hour
since, capped at 100. Nothing ticks in the background, and a penalty is one upsert that reads, recovers and lowers
in the same statement, so concurrent penalties from several processes all count.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from likeness.settings import AbuseSettings

MAX = 100.0
_RECOVERED = "least(100, t.score + :rec * greatest(0, extract(epoch FROM :now - t.updated_at)) / 3600)"

_READ = text(f"SELECT t.key, {_RECOVERED} FROM abuse_trust t WHERE t.key IN :keys").bindparams(
    bindparam("keys", expanding=True)
)

_PENALISE = text(
    f"""
    INSERT INTO abuse_trust AS t (key, score, updated_at) VALUES (:key, greatest(0, :initial - :p), :now)
    ON CONFLICT (key) DO UPDATE SET score = greatest(0, {_RECOVERED} - :p), updated_at = greatest(t.updated_at, :now)
    RETURNING score
    """
)


def scores(session: Session, keys: Sequence[str], settings: AbuseSettings, now: datetime) -> dict[str, float]:
    """The score of each key now; a key never penalised has ``initial_trust``."""
    rows = session.execute(_READ, {"keys": list(keys), "rec": settings.recovery_per_hour, "now": now}).all()
    found = {key: float(score) for key, score in rows}
    return {key: found.get(key, settings.initial_trust) for key in keys}


def penalise(
    session: Session, keys: Sequence[str], amount: float, settings: AbuseSettings, now: datetime
) -> dict[str, float]:
    """Lower each key's score by ``amount`` (after its recovery so far); returns the new scores. Keys are locked in
    the order given (account before IP, everywhere), so concurrent penalties cannot deadlock."""
    params = {"initial": settings.initial_trust, "p": amount, "rec": settings.recovery_per_hour, "now": now}
    return {key: float(session.execute(_PENALISE, {**params, "key": key}).scalar_one()) for key in keys}


def rate_factor(score: float, settings: AbuseSettings) -> float:
    """How much of the full rate a caller of this trust gets: proportional, never under ``min_rate_factor``."""
    return max(settings.min_rate_factor, min(score, MAX) / MAX)
