"""Protected-image hashes: only the perceptual hash is ever stored, never the image."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.analyze import PDQ_ALGORITHM
from likeness.store import audit
from likeness.store.models import ProtectedHash


@dataclass(frozen=True)
class BankInfo:
    bank: str
    hashes: int


def add_hash(session: Session, bank: str, digest: bytes, quality: int) -> tuple[int, bool]:
    """Store a PDQ hash in a bank; returns (id, created). Adding the same hash twice is a no-op."""
    hash_id = session.scalar(
        insert(ProtectedHash)
        .values(bank=bank, algorithm=PDQ_ALGORITHM, digest=digest, quality=quality)
        .on_conflict_do_nothing()
        .returning(ProtectedHash.id)
    )
    if hash_id is not None:
        audit.record(session, "hash.added", "hash", hash_id, {"bank": bank, "quality": quality})
        return hash_id, True
    existing = session.scalar(
        select(ProtectedHash.id).where(
            ProtectedHash.bank == bank, ProtectedHash.algorithm == PDQ_ALGORITHM, ProtectedHash.digest == digest
        )
    )
    assert existing is not None
    return existing, False


def banks(session: Session) -> list[BankInfo]:
    rows = session.execute(
        select(ProtectedHash.bank, func.count()).group_by(ProtectedHash.bank).order_by(ProtectedHash.bank)
    )
    return [BankInfo(bank, n) for bank, n in rows]
