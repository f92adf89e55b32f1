"""Accounts: who may use the API, in which role. Passwords are kept as argon2id hashes (argon2-cffi's defaults:
memory-hard, salted, its parameters inside the hash, so they can be raised later and old hashes still verify).
Every change writes one audit record in the same transaction."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from likeness.accounts.scopes import check_role
from likeness.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from likeness.registry import consent
from likeness.registry.consent import Consent
from likeness.store import audit
from likeness.store.models import Account, ApiToken, Subject

_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verified when the username is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("likeness: no such account")


@dataclass(frozen=True)
class AccountInfo:
    id: int
    username: str
    role: str
    subject_id: int | None
    disabled: bool
    created_at: datetime


def _info(row: Account) -> AccountInfo:
    return AccountInfo(row.id, row.username, row.role, row.subject_id, row.disabled_at is not None, row.created_at)


def create_user(
    session: Session,
    username: str,
    role: str,
    *,
    actor: str,
    password: str | None = None,
    subject_id: int | None = None,
) -> AccountInfo:
    """A subject account is bound to one enrolled subject, or to none yet: it then waits to enroll itself (the web
    portal), seeing nothing until it has. The other roles are bound to none."""
    _check_username(username)
    check_role(role)
    _check_binding(session, role, subject_id)
    digest = _hash_password(password) if password is not None else None
    row = Account(username=username, role=role, subject_id=subject_id, password_hash=digest)
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"an account named {username!r} exists") from None
    audit.record(session, "account.created", "account", row.id, {"role": role, "subject_id": subject_id}, actor=actor)
    return _info(row)


def _check_username(username: str) -> None:
    if not _USERNAME.fullmatch(username):
        raise InvalidInput("a username is 1-64 letters, digits or . _ @ - (starting with a letter or digit)")


def _check_binding(session: Session, role: str, subject_id: int | None) -> None:
    if role != "subject":
        if subject_id is not None:
            raise InvalidInput("only a subject account is bound to a subject")
        return
    if subject_id is None:
        return  # waits to enroll itself
    subject = session.get(Subject, subject_id)
    if subject is None or subject.withdrawn_at is not None:
        raise NotFound(f"no subject {subject_id}")


def bind_subject(session: Session, account_id: int, subject_id: int, *, actor: str) -> AccountInfo:
    """A subject account that waited to enroll is bound to the subject it enrolled, once and for good."""
    row = session.get(Account, account_id, with_for_update=True)
    if row is None or row.disabled_at is not None:
        raise NotFound(f"no account {account_id}")
    if row.role != "subject" or row.subject_id is not None:
        raise Conflict("only a subject account not yet enrolled can enroll itself")
    _check_binding(session, row.role, subject_id)
    row.subject_id = subject_id
    audit.record(session, "account.bound", "account", account_id, {"subject_id": subject_id}, actor=actor)
    return _info(row)


def enrolled_self(
    session: Session, account_id: int, subject_id: int, shown: Consent, agreed_sha256: str, *, actor: str
) -> None:
    """A waiting subject account enrolled itself: its consent to ``shown`` recorded, the account bound to the new
    subject (inside the enrolment's transaction: services.subjects.enroll's ``on_created``)."""
    consent.record(session, subject_id, shown, agreed_sha256, actor=actor)
    bind_subject(session, account_id, subject_id, actor=actor)


def _hash_password(password: str) -> str:
    if len(password) < _MIN_PASSWORD:
        raise InvalidInput(f"a password needs at least {_MIN_PASSWORD} characters")
    return _hasher.hash(password)


def list_users(session: Session) -> list[AccountInfo]:
    return [_info(row) for row in session.scalars(select(Account).order_by(Account.id))]


def get_user(session: Session, account_id: int) -> AccountInfo:
    row = session.get(Account, account_id)
    if row is None:
        raise NotFound(f"no account {account_id}")
    return _info(row)


def find_user(session: Session, username: str) -> AccountInfo:
    row = session.scalar(select(Account).where(Account.username == username))
    if row is None:
        raise NotFound(f"no account named {username!r}")
    return _info(row)


def disable_user(session: Session, account_id: int, *, actor: str) -> AccountInfo:
    """The account and every token of it stop working at once; its tokens are revoked (kept for the record)."""
    row = session.get(Account, account_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no account {account_id}")
    if row.disabled_at is None:
        row.disabled_at = session.scalar(select(func.now()))
        revoked = session.execute(  # type: ignore[attr-defined]  # an UPDATE's CursorResult
            update(ApiToken)
            .where(ApiToken.account_id == account_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=func.now())
        ).rowcount
        audit.record(session, "account.disabled", "account", account_id, {"tokens_revoked": revoked}, actor=actor)
    return _info(row)


def verify_password(session: Session, username: str, password: str) -> AccountInfo:
    """The account whose password this is; Unauthenticated otherwise (the same answer whatever was wrong)."""
    row = session.scalar(select(Account).where(Account.username == username))
    stored = row.password_hash if row is not None and row.password_hash else _DUMMY
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        row = None
    if row is None or row.password_hash is None or row.disabled_at is not None:
        raise Unauthenticated("wrong username or password")
    if _hasher.check_needs_rehash(row.password_hash):  # parameters raised since: upgrade the stored hash
        row.password_hash = _hasher.hash(password)
    return _info(row)
