"""Protected-image hashes in named banks: only the perceptual hash is ever stored, never the image.

The hashes one person submits together form a submission (an NCII submission) with a data key of its own: the
label the operator gave it is sealed with that key, and rows refer to the submission by a random id. Labels are
found again through a short keyed index (a bucket of a few submissions, each decrypted and compared). Withdrawing
a submission's last hash withdraws the submission: store.keys.erase_withdrawn destroys its key and its row.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, fields
from datetime import datetime

from sqlalchemy import ColumnElement, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.analyze import PDQ_ALGORITHM
from likeness.errors import LikenessError, NotFound
from likeness.store import audit
from likeness.store.crypto import Box, DataKey, box_of
from likeness.store.models import Bank, ProtectedHash, Submission

_LABEL_LOCK = 7_243_022  # with the label's index: one writer per bucket, so a label names one submission


@dataclass(frozen=True)
class BankInfo:
    bank: str
    hashes: int
    enabled: bool
    negative: bool
    max_distance: int | None


@dataclass(frozen=True)
class StoredHash:
    id: int
    digest: bytes
    quality: int | None
    submission: str | None  # the submission's id (``submission_for`` turns a label into one)
    algorithm: str = PDQ_ALGORITHM
    frame: int | None = None  # vPDQ: where in the protected video
    time_s: float | None = None


def ensure_bank(session: Session, name: str, *, actor: str) -> None:
    if not name.strip():
        raise LikenessError("a bank needs a name")
    created = session.scalar(insert(Bank).values(name=name).on_conflict_do_nothing().returning(Bank.name))
    if created is not None:
        audit.record(session, "bank.created", "bank", None, {"bank": name}, actor=actor)


def configure_bank(
    session: Session,
    name: str,
    global_max: int,
    *,
    actor: str,
    enabled: bool | None = None,
    negative: bool | None = None,
    max_distance: int | None = None,
) -> BankInfo:
    ensure_bank(session, name, actor=actor)
    bank = session.get(Bank, name)
    assert bank is not None
    if max_distance is not None and not 0 <= max_distance <= global_max:
        raise LikenessError(f"a bank's threshold must be between 0 and the global PDQ threshold {global_max}")
    changes = {
        k: v
        for k, v in {"enabled": enabled, "negative": negative, "max_distance": max_distance}.items()
        if v is not None and getattr(bank, k) != v
    }
    for key, value in changes.items():
        setattr(bank, key, value)
    if changes:
        audit.record(session, "bank.updated", "bank", None, {"bank": name, **changes}, actor=actor)
    return next(b for b in banks(session) if b.bank == name)


def add_hash(session: Session, bank: str, entry: StoredHash, *, actor: str) -> tuple[int, bool]:
    """Store a PDQ hash (or a vPDQ frame feature) in a bank; returns (id, created). Adding the same hash twice is
    a no-op (``entry.id`` is ignored)."""
    ensure_bank(session, bank, actor=actor)
    values = {k: v for k, v in asdict(entry).items() if k != "id"}
    hash_id = session.scalar(
        insert(ProtectedHash).values(bank=bank, **values).on_conflict_do_nothing().returning(ProtectedHash.id)
    )
    if hash_id is not None:
        audit.record(
            session,
            "hash.added",
            "hash",
            hash_id,
            {"bank": bank, "quality": entry.quality, "submission": entry.submission, "algorithm": entry.algorithm},
            actor=actor,
        )
        return hash_id, True
    existing = session.scalar(
        select(ProtectedHash.id).where(
            ProtectedHash.bank == bank, ProtectedHash.algorithm == entry.algorithm, ProtectedHash.digest == entry.digest
        )
    )
    assert existing is not None
    return existing, False


def submission_for(session: Session, label: str, *, create: bool = False, actor: str | None = None) -> str | None:
    """The id of the active submission labelled ``label``; with ``create``, a new one (with its own key) if none,
    audited as ``actor``'s."""
    box = box_of(session)
    index = box.label_index(label)
    session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), {"a": _LABEL_LOCK, "b": index})
    bucket = select(Submission).where(Submission.label_index == index, Submission.withdrawn_at.is_(None))
    for candidate in session.scalars(bucket.order_by(Submission.created_at)):
        key = box.key(candidate.key_id)
        if key is not None and candidate.label_enc is not None and key.open_text(candidate.label_enc) == label:
            return candidate.id
    if not create:
        return None
    if actor is None:
        raise ValueError("creating a submission needs an actor")
    key = box.new_key(session)
    submission = Submission(id=secrets.token_hex(16), key_id=key.id, label_enc=key.seal_text(label), label_index=index)
    session.add(submission)
    session.flush()
    details, personal = {"submission": submission.id}, {"label": label}
    audit.record(session, "submission.created", "submission", None, details, actor=actor, personal=personal, owner=key)
    return submission.id


def submission_key(session: Session, box: Box, hash_id: int) -> DataKey | None:
    """The key of the submission a hash belongs to; None without one, or once withdrawn."""
    row = session.execute(
        select(Submission.key_id, Submission.withdrawn_at)
        .join(ProtectedHash, ProtectedHash.submission == Submission.id)
        .where(ProtectedHash.id == hash_id)
    ).first()
    return box.key(row.key_id) if row is not None and row.withdrawn_at is None else None


def submission_labels(session: Session, ids: set[str]) -> dict[str, str]:
    """The labels of these submissions, for people; a withdrawn one (its key gone) has none."""
    box = box_of(session)
    labels = {}
    for submission in session.scalars(select(Submission).where(Submission.id.in_(ids))):
        key = box.key(submission.key_id) if submission.withdrawn_at is None else None
        if key is not None and submission.label_enc is not None:
            labels[submission.id] = key.open_text(submission.label_enc)
    return labels


def withdraw(
    session: Session, *, actor: str, hash_ids: list[int] | None = None, submission: str | None = None
) -> list[tuple[int, str]]:
    """Delete hashes (and, by cascade, their matches); each withdrawal is audited. A submission left without
    hashes is marked withdrawn (its key and label are destroyed next: store.keys). Returns (id, bank) of each hash
    that went."""
    query = select(ProtectedHash.id, ProtectedHash.bank, ProtectedHash.submission)
    if submission is not None:
        query = query.where(ProtectedHash.submission == _existing(session, submission))
    elif hash_ids:
        query = query.where(ProtectedHash.id.in_(hash_ids))
    else:
        raise LikenessError("name the hashes or the submission to withdraw")
    rows = session.execute(query).all()
    if not rows:
        raise NotFound("no such protected hash" + (f" in submission {submission!r}" if submission else "s"))
    session.execute(delete(ProtectedHash).where(ProtectedHash.id.in_([r.id for r in rows])))
    for row in rows:
        details = {"bank": row.bank, "submission": row.submission}
        audit.record(session, "hash.withdrawn", "hash", row.id, details, actor=actor)
    _withdraw_emptied(session, {r.submission for r in rows if r.submission is not None}, actor)
    return [(r.id, r.bank) for r in rows]


def _withdraw_emptied(session: Session, submission_ids: set[str], actor: str) -> None:
    still_used = select(ProtectedHash.submission).where(ProtectedHash.submission.in_(submission_ids))
    emptied = select(Submission.id).where(Submission.id.in_(submission_ids), Submission.id.not_in(still_used))
    for submission_id in session.scalars(emptied).all():
        session.execute(update(Submission).where(Submission.id == submission_id).values(withdrawn_at=func.now()))
        details = {"submission": submission_id}
        audit.record(session, "submission.withdrawn", "submission", None, details, actor=actor)


def banks(session: Session, *, counted: bool = True) -> list[BankInfo]:
    """Every bank; ``counted=False`` leaves the hash counts at 0 (matching needs the rules only, not a count over
    every hash)."""
    counts: dict[str, int] = {}
    if counted:
        grouped = session.execute(select(ProtectedHash.bank, func.count()).group_by(ProtectedHash.bank))
        counts = {bank: count for bank, count in grouped}
    return [
        BankInfo(b.name, counts.get(b.name, 0), b.enabled, b.negative, b.max_distance)
        for b in session.scalars(select(Bank).order_by(Bank.name))
    ]


def hashes_in(session: Session, bank: str, submission: str | None = None) -> list[StoredHash]:
    if session.get(Bank, bank) is None:
        raise NotFound(f"no bank {bank!r}")
    columns = [getattr(ProtectedHash, f.name) for f in fields(StoredHash)]
    query = select(*columns).where(ProtectedHash.bank == bank).order_by(ProtectedHash.frame, ProtectedHash.id)
    if submission is not None:
        query = query.where(ProtectedHash.submission == _existing(session, submission))
    return [StoredHash(*row) for row in session.execute(query)]


def _existing(session: Session, label: str) -> str:
    found = submission_for(session, label)
    if found is None:
        raise NotFound(f"no submission {label!r}")
    return found


@dataclass(frozen=True)
class HashInfo:
    """One protected hash, for people: its submission by label (None once withdrawn or when it has none)."""

    hash_id: int
    bank: str
    algorithm: str
    digest: bytes
    quality: int | None
    submission: str | None
    frame: int | None
    created_at: datetime

    @property
    def pdq_hex(self) -> str:
        return self.digest.hex()


def get_hash(session: Session, hash_id: int) -> HashInfo:
    row = session.get(ProtectedHash, hash_id)
    if row is None:
        raise NotFound(f"no protected hash {hash_id}")
    label = submission_labels(session, {row.submission}).get(row.submission) if row.submission else None
    return HashInfo(row.id, row.bank, row.algorithm, row.digest, row.quality, label, row.frame, row.created_at)


def hash_ids_in(session: Session, banks: list[str]) -> list[int]:
    """Every protected hash of these banks: what a bank enabled again must search the catalogue for."""
    return list(session.scalars(select(ProtectedHash.id).where(ProtectedHash.bank.in_(banks))))


# -- what matching reads (match/hashes.py, match/indexes.py) ---------------------------------------------------


def usable(min_quality: int) -> ColumnElement[bool]:
    """Hashes good enough to match: quality unknown (imported lists) or at least the minimum."""
    return or_(ProtectedHash.quality.is_(None), ProtectedHash.quality >= min_quality)


def usable_digests(session: Session, min_quality: int, ids: list[int] | None = None) -> list[tuple[int, bytes]]:
    """(id, digest) of every usable protected hash, or of those of ``ids``."""
    query = select(ProtectedHash.id, ProtectedHash.digest).where(usable(min_quality))
    if ids is not None:
        query = query.where(ProtectedHash.id.in_(ids))
    return [(r.id, r.digest) for r in session.execute(query)]


def owners(session: Session, ids: set[int] | list[int]) -> dict[int, tuple[str, str | None]]:
    """(bank, submission id) of each of these hashes."""
    query = select(ProtectedHash.id, ProtectedHash.bank, ProtectedHash.submission).where(ProtectedHash.id.in_(ids))
    return {r.id: (r.bank, r.submission) for r in session.execute(query)}


@dataclass(frozen=True)
class BankedHash:
    id: int
    bank: str
    digest: bytes
    quality: int | None


def banked(session: Session, ids: list[int]) -> list[BankedHash]:
    query = select(ProtectedHash.id, ProtectedHash.bank, ProtectedHash.digest, ProtectedHash.quality)
    return [BankedHash(*row) for row in session.execute(query.where(ProtectedHash.id.in_(ids)))]


def digests_in(session: Session, bank_names: list[str]) -> list[tuple[str, bytes]]:
    """(bank, digest) of every hash in these banks (the negative banks' vetoes)."""
    query = select(ProtectedHash.bank, ProtectedHash.digest).where(ProtectedHash.bank.in_(bank_names))
    return [(r.bank, r.digest) for r in session.execute(query)]


def video_submissions(session: Session, ids: set[int]) -> dict[int, str | None]:
    """The submission of each of these hashes that is a protected video's frame."""
    from likeness.analyze.vpdq import VPDQ_ALGORITHM  # with the matching stack only

    if not ids:
        return {}
    query = select(ProtectedHash.id, ProtectedHash.submission).where(
        ProtectedHash.id.in_(ids), ProtectedHash.algorithm == VPDQ_ALGORITHM
    )
    return {row.id: row.submission for row in session.execute(query)}


def video_digests(session: Session, submission: str | None, min_quality: int) -> list[bytes]:
    from likeness.analyze.vpdq import VPDQ_ALGORITHM

    query = select(ProtectedHash.digest).where(
        ProtectedHash.submission == submission, ProtectedHash.algorithm == VPDQ_ALGORITHM, usable(min_quality)
    )
    return list(session.scalars(query))
