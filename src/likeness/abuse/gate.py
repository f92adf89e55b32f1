"""Admission of one request, penalties for rejected inputs and shadow holds.

``admit`` runs once per authenticated request, in this order: an IP block or an account ban refuses
(``Forbidden``); an enumeration throttle refuses (``RateLimited``); then one token per request (``cost``) is spent
from the caller's token bucket and from its IP's, each refilled at a rate that follows that key's trust. A
refused spend lowers trust, so a client that ignores Retry-After slows itself down further.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from likeness.abuse import buckets, measures, record, trust
from likeness.abuse.caller import Admission, Caller
from likeness.errors import Forbidden, InvalidInput, RateLimited
from likeness.settings import AbuseSettings
from likeness.store.models import AbuseHeld

_MAX_DETAIL_TEXT = 512  # a held submission's detail holds hashes and sizes, never anything as long as a picture


def admit(
    session: Session,
    caller: Caller,
    settings: AbuseSettings,
    *,
    action: str,
    cost: float = 1.0,
    at: datetime | None = None,
) -> Admission:
    """Let one request through or raise ``Forbidden`` / ``RateLimited(retry_after=...)``. Commit the transaction
    even when this raises: the refusal's log row and trust penalty are part of the decision."""
    if not settings.enabled:
        return Admission(shadow_banned=False, trust=trust.MAX)
    now = record.now(session, at)
    found = measures.standing(session, caller, now)
    _refuse_standing(session, caller, found, action, now)
    scores = trust.scores(session, caller.keys, settings, now)
    _spend(session, caller, settings, scores, action=action, cost=cost, now=now)
    shadow = found.get(measures.SHADOW_BAN) is not None
    if settings.log_admits or shadow:
        record.write(session, now, "admit", action, caller=caller, detail={"shadow_banned": shadow})
    return Admission(shadow_banned=shadow, trust=min(scores.values()))


def _refuse_standing(session: Session, caller: Caller, found: measures.Standing, action: str, now: datetime) -> None:
    for kind, decision in ((measures.BLOCK, "blocked"), (measures.BAN, "banned")):
        hit = found.get(kind)
        if hit is not None:
            record.write(session, now, decision, action, caller=caller, measure_id=hit[0])
            raise Forbidden(f"refused: this {'address' if kind == measures.BLOCK else 'account'} is {decision}")
    throttle = found.get(measures.ENUMERATION)
    if throttle is not None:
        ends = throttle[1]
        wait = (ends - now).total_seconds() if ends else 3600.0
        record.write(session, now, "throttled", action, caller=caller, measure_id=throttle[0])
        raise RateLimited("too many distinct lookups: try again later", retry_after=math.ceil(max(wait, 1.0)))


def _spend(
    session: Session,
    caller: Caller,
    settings: AbuseSettings,
    scores: dict[str, float],
    *,
    action: str,
    cost: float,
    now: datetime,
) -> None:
    """Spend from the token's (else the account's) bucket, then the IP's; the first refusal raises."""
    for key, bucket, rate, burst in _buckets(caller, settings):
        factor = trust.rate_factor(scores[key], settings)
        spent = buckets.spend(session, bucket, rate=rate * factor, cap=burst * factor, cost=cost, now=now)
        if not spent.ok:
            _penalise(session, caller, "rate_limited", settings, now, detail={"bucket": bucket, "action": action})
            raise RateLimited("too many requests", retry_after=math.ceil(max(spent.retry_after, 1.0)))


def _buckets(caller: Caller, settings: AbuseSettings) -> list[tuple[str, str, float, float]]:
    """(trust key, bucket key, rate, burst) of each bucket the caller spends from."""
    ip_key = caller.keys[-1]
    rows = [(ip_key, ip_key, settings.ip_rate_per_s, settings.ip_burst)]
    if caller.account_id is None:
        return rows
    own = f"token:{caller.token_id}" if caller.token_id is not None else f"account:{caller.account_id}"
    return [(caller.keys[0], own, settings.token_rate_per_s, settings.token_burst), *rows]


def rejected(
    session: Session,
    caller: Caller,
    reason: str,
    *,
    settings: AbuseSettings | None = None,
    at: datetime | None = None,
) -> None:
    """The API refused this caller's input (``invalid_image``, ``duplicate``, ``nsfw``, ...): lower the trust of
    its account and IP by ``penalties[reason]`` (``default_penalty`` for another reason), and log it."""
    settings = settings or AbuseSettings()
    _penalise(session, caller, reason, settings, record.now(session, at))


def _penalise(
    session: Session,
    caller: Caller,
    reason: str,
    settings: AbuseSettings,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> dict[str, float]:
    amount = settings.penalties.get(reason, settings.default_penalty)
    scores = trust.penalise(session, caller.keys, amount, settings, now)
    record.write(session, now, "penalty", reason, caller=caller, detail={**(detail or {}), "trust": scores})
    return scores


def shadow_hold(
    session: Session, caller: Caller, what: str, detail: dict[str, Any], *, at: datetime | None = None
) -> int:
    """Keep a shadow-banned caller's submission for review instead of processing it; returns the held row's id.
    ``detail`` is what the API says of it: hashes, sizes, counts (JSON scalars and short lists), never bytes."""
    _check_detail(detail)
    now = record.now(session, at)
    values = {"account_id": caller.account_id, "token_id": caller.token_id, "ip": caller.ip}
    held_id = session.execute(
        insert(AbuseHeld).values(**values, what=what, detail=detail, created_at=now).returning(AbuseHeld.id)
    ).scalar_one()
    record.write(session, now, "shadow_hold", what, caller=caller, detail={"held_id": held_id})
    return int(held_id)


def _check_detail(detail: dict[str, Any]) -> None:
    for name, value in detail.items():
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str | int | float | bool | None):
                raise InvalidInput(f"held detail {name!r}: only hashes, sizes and counts are kept")
            if isinstance(item, str) and len(item) > _MAX_DETAIL_TEXT:
                raise InvalidInput(f"held detail {name!r}: {len(item)} characters is no hash")
