"""PDQ matching by exact Hamming distance (every hash within the threshold, never approximate)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from likeness.match.policy import hash_tier
from likeness.match.records import create_match
from likeness.settings import HashSettings
from likeness.store.audit import registry_version
from likeness.store.models import Media, ProtectedHash


def _words(digests: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(digests), dtype=np.uint64).reshape(-1, 4) if digests else np.zeros((0, 4), np.uint64)


def distances(table: np.ndarray, digest: bytes) -> np.ndarray:
    return np.bitwise_count(table ^ _words([digest])).sum(axis=1)


@dataclass
class HashIndex:
    version: int
    ids: np.ndarray
    table: np.ndarray  # (n, 4) uint64

    @classmethod
    def load(cls, session: Session, min_quality: int) -> HashIndex:
        rows = session.execute(
            select(ProtectedHash.id, ProtectedHash.digest)
            .where(ProtectedHash.quality >= min_quality)
            .order_by(ProtectedHash.id)
        ).all()
        return cls(
            registry_version(session), np.array([r.id for r in rows], np.int64), _words([r.digest for r in rows])
        )

    def near(self, digest: bytes, max_distance: int) -> list[tuple[int, int]]:
        d = distances(self.table, digest)
        hits = np.flatnonzero(d <= max_distance)
        return [(int(self.ids[i]), int(d[i])) for i in hits]


def match_hash(
    session: Session, index: HashIndex, media_id: int, digest: bytes | None, quality: int | None, settings: HashSettings
) -> int:
    if digest is None or quality is None or quality < settings.pdq_min_quality:
        return 0
    hits = index.near(digest, settings.pdq_max_distance)
    return _record(session, [(media_id, hash_id, distance) for hash_id, distance in hits], settings)


def search_catalogue(session: Session, hash_id: int, settings: HashSettings) -> int:
    """A newly protected hash against every catalogued media's PDQ."""
    protected = session.get(ProtectedHash, hash_id)
    assert protected is not None
    if protected.quality < settings.pdq_min_quality:
        return 0
    rows = session.execute(
        select(Media.id, Media.pdq).where(Media.pdq.is_not(None), Media.pdq_quality >= settings.pdq_min_quality)
    ).all()
    d = distances(_words([r.pdq for r in rows if r.pdq is not None]), protected.digest)
    hits = np.flatnonzero(d <= settings.pdq_max_distance)
    return _record(session, [(rows[int(i)].id, hash_id, int(d[i])) for i in hits], settings)


def _record(session: Session, hits: list[tuple[int, int, int]], settings: HashSettings) -> int:
    """Create matches for (media id, hash id, distance) triples; returns how many are new."""
    created = 0
    for media_id, hash_id, distance in hits:
        tier = hash_tier(distance, settings)
        assert tier is not None
        created += create_match(
            session, kind="hash", media_id=media_id, score=float(distance), tier=tier, hash_id=hash_id
        )
    return created
