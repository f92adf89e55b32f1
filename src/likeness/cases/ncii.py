"""NCII case reports: a victim reports intimate images shared without consent (what kind, where, how to reach
them), gets a case number and a PIN, and can check the case's status or withdraw it with the two.

Why a key per case: the description, contact data and URLs say who the victim is and what was done to them. They
are sealed with the case's own data key (store/crypto.py), as submissions are, so withdrawal (which shreds the
key, store/keys.py) leaves every copy of them unreadable: in the WAL, in old heap pages, in a backup.

Why these credentials: the number is random (Crockford base32, no look-alike letters, read back forgivingly) so it
says nothing and cannot be guessed from another; the PIN is shown once and kept only as an argon2id hash. Wrong
PINs are counted: past ``PIN_ATTEMPTS`` the case refuses even the right one (an operator can still act on it).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from likeness.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from likeness.registry.hashes import submission_for
from likeness.store import audit
from likeness.store.crypto import box_of
from likeness.store.models import NciiCase, ProtectedHash

KINDS = ("intimate_image", "sextortion", "deepfake", "voyeurism", "other")
PIN_ATTEMPTS = 10  # wrong PINs a case takes before it refuses every PIN
PIN_DIGITS = 8
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
_LOOKALIKE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_NUMBER_CHARS = 10
_WRONG = "no case with that number and PIN"  # the same answer for an unknown number and a wrong PIN
_hasher = PasswordHasher()
_DUMMY = _hasher.hash("0" * PIN_DIGITS)  # verified against for unknown numbers, so both take as long


@dataclass(frozen=True)
class NewCase:
    """What the victim is given once: the PIN is not kept anywhere in clear."""

    id: int
    number: str
    pin: str


@dataclass(frozen=True)
class CaseStatus:
    number: str
    kind: str
    status: str  # open | withdrawn
    platforms: list[str]
    created_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None


@dataclass(frozen=True)
class CaseDetails:
    """The case as an operator works it: its status and, while it is open, the sealed part opened."""

    id: int
    status: CaseStatus
    description: str | None
    contact: dict[str, str]
    urls: list[str]
    hash_ids: list[int]
    submission: str | None


def normalise(number: str) -> str:
    """The number as stored, from what someone typed: any case, spaces or dashes, O for 0, I or L for 1."""
    plain = "".join(c for c in number.upper() if c.isalnum()).translate(_LOOKALIKE)
    if len(plain) != _NUMBER_CHARS or any(c not in _ALPHABET for c in plain):
        raise InvalidInput(f"a case number has {_NUMBER_CHARS} letters and digits, as XXXXX-XXXXX")
    return f"{plain[:5]}-{plain[5:]}"


def create_case(
    session: Session,
    *,
    kind: str,
    description: str,
    contact: dict[str, str],
    urls: list[str],
    platforms: list[str],
    hash_ids: list[int],
    submission: str | None,
    actor: str,
) -> NewCase:
    """Open a case; the details are sealed with a new key of its own. ``submission`` is a submission's label."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
    if not description.strip():
        raise InvalidInput("a report needs a description")
    _check_hashes(session, hash_ids)
    submission_id = submission_for(session, submission) if submission else None
    if submission and submission_id is None:
        raise NotFound("no active submission with that label")
    key = box_of(session).new_key(session)
    linked = sorted(set(hash_ids))
    details: dict[str, Any] = {"description": description, "contact": contact, "urls": urls, "hash_ids": linked,
               "submission": submission_id}  # fmt: skip
    pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
    case = NciiCase(number=_free_number(session), pin_hash=_hasher.hash(pin), key_id=key.id, kind=kind,
                    platforms=sorted({p.strip().lower() for p in platforms if p.strip()}),
                    details_enc=key.seal_json(details))  # fmt: skip
    session.add(case)
    session.flush()
    counts = {"kind": kind, "urls": len(urls), "hashes": len(linked), "submission": bool(submission_id)}
    audit.record(session, "ncii.reported", "ncii_case", case.id, counts, actor=actor)
    return NewCase(case.id, case.number, pin)


def _check_hashes(session: Session, hash_ids: list[int]) -> None:
    if not hash_ids:
        return
    found = set(session.scalars(select(ProtectedHash.id).where(ProtectedHash.id.in_(hash_ids))))
    missing = sorted(set(hash_ids) - found)
    if missing:
        raise NotFound(f"no protected hash {', '.join(map(str, missing))}")


def _free_number(session: Session) -> str:
    """A random number no case has (50 bits: a clash is rare, but is checked)."""
    while True:
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(_NUMBER_CHARS))
        number = f"{raw[:5]}-{raw[5:]}"
        if session.scalar(select(NciiCase.id).where(NciiCase.number == number)) is None:
            return number


def authenticate(session: Session, number: str, pin: str) -> NciiCase | None:
    """The case, locked, when ``pin`` is its PIN; None otherwise, a wrong PIN counted (the caller commits, then
    refuses). A case past ``PIN_ATTEMPTS`` wrong PINs is refused outright."""
    case = session.scalar(select(NciiCase).where(NciiCase.number == normalise(number)).with_for_update())
    if case is None or case.pin_hash is None:
        _verify(_DUMMY, pin)
        return None
    if case.pin_failures >= PIN_ATTEMPTS:
        raise Forbidden("this case took too many wrong PINs; ask the operator")
    if _verify(case.pin_hash, pin):
        return case
    case.pin_failures += 1
    return None


def _verify(pin_hash: str, pin: str) -> bool:
    try:
        return _hasher.verify(pin_hash, pin)
    except (VerificationError, InvalidHashError):
        return False


def refused() -> Unauthenticated:
    return Unauthenticated(_WRONG)


def status_of(case: NciiCase) -> CaseStatus:
    return CaseStatus(case.number, case.kind, case.status, list(case.platforms), case.created_at, case.updated_at,
                      case.withdrawn_at)  # fmt: skip


def linked_hashes(session: Session, case: NciiCase) -> list[int]:
    """The protected hashes the case names (readable while it is open)."""
    key = box_of(session).key(case.key_id)
    if key is None or case.details_enc is None:
        return []
    return list(key.open_json(case.details_enc).get("hash_ids", []))


def withdraw(session: Session, case: NciiCase, *, actor: str) -> bool:
    """Withdrawal, step 1: mark the case withdrawn and empty its sealed part, audited; store.keys.
    erase_withdrawn_cases then shreds the key (also at the next start, after a crash). False if it already was."""
    if case.withdrawn_at is not None:
        return False
    case.withdrawn_at, case.updated_at, case.status, case.details_enc = func.now(), func.now(), "withdrawn", None
    audit.record(session, "ncii.withdrawn", "ncii_case", case.id, {}, actor=actor)
    return True


def details(session: Session, number: str) -> CaseDetails:
    """The case for an operator (no PIN): the sealed part opened while the case is open."""
    case = session.scalar(select(NciiCase).where(NciiCase.number == normalise(number)))
    if case is None:
        raise NotFound("no case with that number")
    key = box_of(session).key(case.key_id)
    sealed: dict[str, Any] = key.open_json(case.details_enc) if key and case.details_enc is not None else {}
    return CaseDetails(case.id, status_of(case), sealed.get("description"), sealed.get("contact", {}),
                       sealed.get("urls", []), sealed.get("hash_ids", []), sealed.get("submission"))  # fmt: skip
