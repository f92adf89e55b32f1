"""Protected-image hashes in named banks: only the perceptual hash is ever stored, never the image."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.analyze import PDQ_ALGORITHM
from likeness.errors import LikenessError, NotFound
from likeness.store import audit
from likeness.store.models import Bank, ProtectedHash


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
    submission: str | None
    algorithm: str = PDQ_ALGORITHM
    frame: int | None = None  # vPDQ: where in the protected video
    time_s: float | None = None


def ensure_bank(session: Session, name: str) -> None:
    if not name.strip():
        raise LikenessError("a bank needs a name")
    created = session.scalar(insert(Bank).values(name=name).on_conflict_do_nothing().returning(Bank.name))
    if created is not None:
        audit.record(session, "bank.created", "bank", None, {"bank": name})


def configure_bank(
    session: Session,
    name: str,
    global_max: int,
    *,
    enabled: bool | None = None,
    negative: bool | None = None,
    max_distance: int | None = None,
) -> BankInfo:
    ensure_bank(session, name)
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
        audit.record(session, "bank.updated", "bank", None, {"bank": name, **changes})
    return next(b for b in banks(session) if b.bank == name)


def add_hash(session: Session, bank: str, entry: StoredHash) -> tuple[int, bool]:
    """Store a PDQ hash (or a vPDQ frame feature) in a bank; returns (id, created). Adding the same hash twice is
    a no-op (``entry.id`` is ignored)."""
    ensure_bank(session, bank)
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
        )
        return hash_id, True
    existing = session.scalar(
        select(ProtectedHash.id).where(
            ProtectedHash.bank == bank, ProtectedHash.algorithm == entry.algorithm, ProtectedHash.digest == entry.digest
        )
    )
    assert existing is not None
    return existing, False


def withdraw(session: Session, *, hash_ids: list[int] | None = None, submission: str | None = None) -> int:
    """Delete hashes (and, by cascade, their matches); each withdrawal is audited. Returns how many went."""
    query = select(ProtectedHash.id, ProtectedHash.bank)
    if submission is not None:
        query = query.where(ProtectedHash.submission == submission)
    elif hash_ids:
        query = query.where(ProtectedHash.id.in_(hash_ids))
    else:
        raise LikenessError("name the hashes or the submission to withdraw")
    rows = session.execute(query).all()
    if not rows:
        raise NotFound("no such protected hash" + (f" in submission {submission!r}" if submission else "s"))
    session.execute(delete(ProtectedHash).where(ProtectedHash.id.in_([r.id for r in rows])))
    for row in rows:
        audit.record(session, "hash.withdrawn", "hash", row.id, {"bank": row.bank, "submission": submission})
    return len(rows)


def banks(session: Session) -> list[BankInfo]:
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
        query = query.where(ProtectedHash.submission == submission)
    return [StoredHash(*row) for row in session.execute(query)]
