"""PDQ matching by exact Hamming distance (every hash within the threshold, never approximate).

Scans check new media against the protected hashes through the multi-index; a newly protected hash is checked
against the catalogue by one vectorised pass over every catalogued PDQ (one query does not repay building an index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from likeness.match.pdq_index import PdqIndex, as_words, hamming
from likeness.match.policy import hash_tier
from likeness.match.records import create_match
from likeness.settings import HashSettings
from likeness.store.audit import registry_version
from likeness.store.models import AuditEvent, Media, ProtectedHash


@dataclass
class HashIndex:
    """Every protected hash of sufficient quality, in an exact multi-index (``match.pdq_index``).

    ``version`` is the newest audit event applied; ``refresh`` applies later ``hash.*`` events one by one,
    so protecting one more image never rebuilds the index.
    """

    version: int
    index: PdqIndex
    min_quality: int

    @classmethod
    def load(cls, session: Session, settings: HashSettings) -> HashIndex:
        rows = session.execute(
            select(ProtectedHash.id, ProtectedHash.digest).where(ProtectedHash.quality >= settings.pdq_min_quality)
        ).all()
        index = PdqIndex(settings.pdq_max_distance)
        index.build(np.array([r.id for r in rows], np.int64), as_words([r.digest for r in rows]))
        return cls(registry_version(session), index, settings.pdq_min_quality)

    def refresh(self, session: Session) -> None:
        events = session.execute(
            select(AuditEvent.id, AuditEvent.action, AuditEvent.entity_id)
            .where(AuditEvent.entity == "hash", AuditEvent.id > self.version)
            .order_by(AuditEvent.id)
        ).all()
        added = [e.entity_id for e in events if e.action == "hash.added"]
        rows = {r.id: r for r in session.execute(select(ProtectedHash).where(ProtectedHash.id.in_(added))).scalars()}
        for event in events:
            row = rows.get(event.entity_id)
            if event.action == "hash.added" and row is not None and row.quality >= self.min_quality:
                self.index.add(row.id, row.digest)
            elif event.action != "hash.added" and event.entity_id is not None:
                self.index.remove(event.entity_id)
            self.version = event.id

    def near(self, digest: bytes, max_distance: int) -> list[tuple[int, int]]:
        return self.index.query(digest, max_distance)


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
    d = hamming(as_words([r.pdq for r in rows if r.pdq is not None]), as_words([protected.digest])[0])
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
