"""Coordinated attacks and enumeration.

Coordinated attack: the same picture (its SHA-256, or a PDQ within ``coordinated_pdq_distance``: a resized or
re-encoded copy) submitted by ``coordinated_accounts`` distinct callers within the window is flagged once, for an
operator to look at: many accounts pushing one picture is how a bank is poisoned or a person brigaded. The hashes
are kept only for the window.

Enumeration: a caller probing more than ``enumeration_max_distinct`` distinct faces or hashes within the window
(counted per account and per IP) is flagged and throttled, so that the banks cannot be mined by hill-climbing a
hash or sweeping faces. Only a keyed MAC of each probed key is stored (HMAC under a key derived from the master
key, which the database never holds), so the table tells no one what was asked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from likeness.abuse import measures, record, trust
from likeness.abuse.caller import Caller
from likeness.errors import InvalidInput
from likeness.settings import AbuseSettings
from likeness.store.crypto import box_of
from likeness.store.models import AbuseMeasure

_PROBE_INFO = b"likeness abuse probe mac v1"

_SAME_PICTURE = text(
    """
    SELECT array_agg(DISTINCT who ORDER BY who) FROM abuse_uploads
    WHERE at > :since AND (sha256 = :sha256
        OR (CAST(:pdq AS bit(256)) IS NOT NULL AND pdq IS NOT NULL
            AND bit_count(pdq # CAST(:pdq AS bit(256))) <= :distance))
    """
)

# Forgetting what fell out of the window: rows another transaction is deleting are skipped, never waited for (two
# processes pruning the same rows in different orders could otherwise deadlock), and a big backlog goes in slices.
_PRUNE_UPLOADS = text(
    """
    DELETE FROM abuse_uploads WHERE id IN (
        SELECT id FROM abuse_uploads WHERE at <= :since ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED)
    """
)

_PRUNE_PROBES = text(
    """
    DELETE FROM abuse_probes WHERE (who, mac) IN (
        SELECT who, mac FROM abuse_probes WHERE who = :who AND at <= :since LIMIT 1000 FOR UPDATE SKIP LOCKED)
    """
)

_PROBE = text(
    """
    INSERT INTO abuse_probes (who, mac, at) SELECT :who, m, :now FROM unnest(CAST(:macs AS bytea[])) AS m
    ON CONFLICT (who, mac) DO UPDATE SET at = greatest(abuse_probes.at, excluded.at)
    """
)


def observe_upload(
    session: Session,
    caller: Caller,
    sha256: str,
    pdq: bytes | None,
    *,
    settings: AbuseSettings | None = None,
    at: datetime | None = None,
) -> int | None:
    """Note that ``caller`` submitted this picture; returns the id of a coordinated-attack flag it raised."""
    settings = settings or AbuseSettings()
    now = record.now(session, at)
    since = now - timedelta(seconds=settings.coordinated_window_s)
    digest, bits = _digest(sha256), _bits(pdq)
    session.execute(_PRUNE_UPLOADS, {"since": since})
    session.execute(
        text("INSERT INTO abuse_uploads (who, sha256, pdq, at) VALUES (:who, :sha256, CAST(:pdq AS bit(256)), :now)"),
        {"who": caller.keys[0], "sha256": digest, "pdq": bits, "now": now},
    )
    params = {"since": since, "sha256": digest, "pdq": bits, "distance": settings.coordinated_pdq_distance}
    callers: list[str] = session.execute(_SAME_PICTURE, params).scalar_one() or []
    if len(callers) < settings.coordinated_accounts:
        return None
    subject = f"sha256:{digest.hex()}"
    detail = {"sha256": digest.hex(), "callers": callers, "window_s": settings.coordinated_window_s}
    return _flag_once(session, caller, measures.COORDINATED, subject, now, since, detail)


def observe_probe(
    session: Session,
    caller: Caller,
    kind: str,
    key: bytes,
    *,
    settings: AbuseSettings | None = None,
    at: datetime | None = None,
) -> int | None:
    """Note that ``caller`` looked up ``key`` (a face embedding's bytes, a PDQ hash) of ``kind`` ('face', 'hash');
    returns the id of an enumeration flag it raised. The next ``admit`` of a flagged caller is refused."""
    return observe_probes(session, caller, kind, [key], settings=settings, at=at)


def observe_probes(
    session: Session,
    caller: Caller,
    kind: str,
    keys: Sequence[bytes],
    *,
    settings: AbuseSettings | None = None,
    at: datetime | None = None,
) -> int | None:
    """``observe_probe`` for every key of one request (a lookup of many hashes) in three statements per caller key,
    not three per hash."""
    settings = settings or AbuseSettings()
    if caller.account_id in settings.enumeration_exempt_accounts:
        return None
    now = record.now(session, at)
    since = now - timedelta(seconds=settings.enumeration_window_s)
    macs = sorted({_probe_mac(session, kind, key) for key in keys})  # once each: an upsert touches a row once
    flagged = None
    for who in caller.keys:
        distinct = _count_probes(session, who, macs, now, since)
        if distinct > settings.enumeration_max_distinct and flagged is None:
            flagged = _throttle(session, caller, who, distinct, settings, now, since)
    return flagged


def _count_probes(session: Session, who: str, macs: list[bytes], now: datetime, since: datetime) -> int:
    """Record the probes and count ``who``'s distinct probes within the window (older ones are forgotten)."""
    session.execute(_PRUNE_PROBES, {"who": who, "since": since})
    session.execute(_PROBE, {"who": who, "macs": macs, "now": now})
    count = text("SELECT count(*) FROM abuse_probes WHERE who = :who AND at > :since")
    return int(session.execute(count, {"who": who, "since": since}).scalar_one())


def _throttle(
    session: Session,
    caller: Caller,
    who: str,
    distinct: int,
    settings: AbuseSettings,
    now: datetime,
    since: datetime,
) -> int | None:
    until = now + timedelta(seconds=settings.enumeration_throttle_s)
    detail = {"distinct": distinct, "window_s": settings.enumeration_window_s}
    flag = _flag_once(session, caller, measures.ENUMERATION, who, now, since, detail, expires_at=until)
    if flag is not None:
        amount = settings.penalties.get("enumeration", settings.default_penalty)
        scores = trust.penalise(session, caller.keys, amount, settings, now)
        record.write(session, now, "penalty", "enumeration", caller=caller, measure_id=flag, detail={"trust": scores})
    return flag


def _flag_once(
    session: Session,
    caller: Caller,
    kind: str,
    subject: str,
    now: datetime,
    since: datetime,
    detail: dict[str, Any],
    expires_at: datetime | None = None,
) -> int | None:
    """A new flag, unless one is active on ``subject`` from within the window. The advisory lock makes two
    processes seeing the same threshold crossed at once raise one flag, not two."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"{kind}:{subject}"})
    if measures.active_subject(session, kind, subject, now, since) is not None:
        return None
    values = {"kind": kind, "account_id": caller.account_id, "ip": caller.ip, "subject": subject}
    row = {**values, "reason": kind, "detail": detail, "actor": record.SYSTEM, "created_at": now}
    statement = insert(AbuseMeasure).values(**row, expires_at=expires_at).returning(AbuseMeasure.id)
    flag_id = int(session.execute(statement).scalar_one())
    record.write(session, now, "flag", kind, caller=caller, measure_id=flag_id, detail=detail)
    return flag_id


def _probe_mac(session: Session, kind: str, key: bytes) -> bytes:
    secret = hmac.new(box_of(session).audit_key, _PROBE_INFO, hashlib.sha256).digest()
    return hmac.new(secret, kind.encode() + b"\0" + bytes(key), hashlib.sha256).digest()


def _digest(sha256: str) -> bytes:
    try:
        digest = bytes.fromhex(sha256)
    except ValueError as exc:
        raise InvalidInput("sha256: not a hex digest") from exc
    if len(digest) != 32:
        raise InvalidInput("sha256: not 32 bytes")
    return digest


def _bits(pdq: bytes | None) -> str | None:
    """A PDQ hash as PostgreSQL bit-string text; None when the picture had none."""
    if pdq is None:
        return None
    if len(pdq) != 32:
        raise InvalidInput("pdq: not 256 bits")
    return "".join(f"{byte:08b}" for byte in pdq)
