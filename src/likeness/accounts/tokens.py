"""API tokens: random, shown once, stored only as a digest, with scopes, an expiry, revocation and a last use.

A token is ``lk_`` followed by 32 random bytes (``secrets.token_urlsafe``): the prefix lets secret scanners and
people recognise one in a log or a repository. Only its SHA-256 is stored. A slow, salted hash (argon2) is what a
password needs, because people choose passwords from a small space an attacker can search; a token has 256 bits
of entropy, so nobody can search for the token of a stolen digest, and a plain digest lets every request find its
token with one indexed lookup instead of an argon2 verification (tens of milliseconds and 64 MiB) per request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from likeness.accounts.scopes import ROLE_SCOPES, granted
from likeness.errors import InvalidInput, NotFound, Unauthenticated
from likeness.store import audit
from likeness.store.models import Account, ApiToken, Subject
from likeness.text import clean

PREFIX = "lk_"
_MAX_DAYS = 3650.0


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the account, the token, the role, what it may do and (subjects) whose data it sees."""

    account_id: int
    token_id: int | None
    role: str
    scopes: frozenset[str]
    subject_id: int | None

    @property
    def actor(self) -> str:
        """The audit actor: the token when there is one (it says which credential did it), else the account."""
        return f"token:{self.token_id}" if self.token_id is not None else f"user:{self.account_id}"

    def visible_subjects(self) -> set[int] | None:
        """The subjects whose data this principal may see: None for all (reviewers, admins)."""
        if self.role != "subject":
            return None
        return {self.subject_id} if self.subject_id is not None else set()


@dataclass(frozen=True)
class TokenInfo:
    id: int
    account_id: int
    label: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True)
class NewToken:
    info: TokenInfo
    token: str  # shown to its owner once; never stored


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _info(row: ApiToken) -> TokenInfo:
    return TokenInfo(
        row.id,
        row.account_id,
        row.label,
        list(row.scopes),
        row.created_at,
        row.expires_at,
        row.revoked_at,
        row.last_used_at,
    )


def create_token(
    session: Session,
    account_id: int,
    *,
    actor: str,
    label: str = "",
    scopes: list[str] | None = None,
    days: float | None = 90.0,
) -> NewToken:
    """``days=None``: a token that never expires (an operator's choice, made explicitly)."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"no account {account_id}")
    if account.disabled_at is not None:
        raise InvalidInput(f"account {account_id} is disabled")
    if days is not None and not 0 < days <= _MAX_DAYS:
        raise InvalidInput(f"a token lives more than 0 and at most {_MAX_DAYS:g} days")
    raw = PREFIX + secrets.token_urlsafe(32)
    now = session.scalar(select(func.now()))
    assert now is not None
    row = ApiToken(
        account_id=account_id,
        digest=digest(raw),
        label=clean(label, 64),  # shown back in lists: no control characters (NUL is refused by PostgreSQL)
        scopes=granted(account.role, scopes),
        expires_at=now + timedelta(days=days) if days is not None else None,
        created_at=now,
    )
    session.add(row)
    session.flush()
    details = {"account_id": account_id, "scopes": row.scopes, "expires_at": _iso(row.expires_at)}
    audit.record(session, "token.created", "api_token", row.id, details, actor=actor)
    return NewToken(_info(row), raw)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def list_tokens(session: Session, account_id: int | None = None) -> list[TokenInfo]:
    query = select(ApiToken).order_by(ApiToken.id)
    if account_id is not None:
        query = query.where(ApiToken.account_id == account_id)
    return [_info(row) for row in session.scalars(query)]


def revoke_token(session: Session, token_id: int, *, actor: str, account_id: int | None = None) -> TokenInfo:
    """``account_id``: only a token of that account (someone revoking their own); another's reads as not found."""
    row = session.get(ApiToken, token_id, with_for_update=True)
    if row is None or (account_id is not None and row.account_id != account_id):
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = session.scalar(select(func.now()))
        audit.record(session, "token.revoked", "api_token", token_id, {"account_id": row.account_id}, actor=actor)
    return _info(row)


def authenticate_token(session: Session, raw: str, *, touch_every_s: float = 60.0) -> Principal:
    """The principal of a bearer token; Unauthenticated when it is unknown, expired, revoked or its account is
    disabled (one message for all: the caller learns nothing about which tokens exist)."""
    if not raw.startswith(PREFIX) or len(raw) > 200:
        raise Unauthenticated("invalid token")
    found = session.execute(
        select(ApiToken, Account, func.now())
        .join(Account, Account.id == ApiToken.account_id)
        .where(ApiToken.digest == digest(raw))
    ).one_or_none()
    if found is None:
        raise Unauthenticated("invalid token")
    token, account, now = found
    if not _usable(token, account, now) or not _subject_present(session, account):
        raise Unauthenticated("invalid token")
    if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=touch_every_s):
        token.last_used_at = now  # bookkeeping, not a change of the token: not audited
    scopes = frozenset(token.scopes) & ROLE_SCOPES[account.role]
    return Principal(account.id, token.id, account.role, scopes, account.subject_id)


def _usable(token: ApiToken, account: Account, now: datetime) -> bool:
    if token.revoked_at is not None or account.disabled_at is not None:
        return False
    # (a subject account whose subject was withdrawn was disabled by the withdrawal: registry.withdraw_subject)
    return token.expires_at is None or token.expires_at > now


def _subject_present(session: Session, account: Account) -> bool:
    """A subject account stops working once its subject is withdrawn (marked, then its row deleted, the account
    disabled). One bound to no subject yet waits to enroll: it works, and sees nothing."""
    if account.role != "subject" or account.subject_id is None:
        return True
    subject = session.get(Subject, account.subject_id)
    return subject is not None and subject.withdrawn_at is None


def principal_of(session: Session, account_id: int) -> Principal:
    """A password login's principal: every scope of the role, no token."""
    account = session.get(Account, account_id)
    if account is None or account.disabled_at is not None or not _subject_present(session, account):
        raise Unauthenticated("wrong username or password")
    return Principal(account.id, None, account.role, ROLE_SCOPES[account.role], account.subject_id)
