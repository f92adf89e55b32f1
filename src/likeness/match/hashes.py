"""PDQ matching by exact Hamming distance (every hash within the threshold, never approximate).

Scans check new media against every protected hash through the multi-index; a newly protected hash is checked
against the catalogue by one vectorised pass over every catalogued PDQ (one query does not repay an index).
Banks decide what a hit means: a disabled bank's hits are ignored, a bank's own threshold can only tighten the
global one, and a hit in a negative bank (known false positives) means no hash match for that media.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.analyze.pdq_index import PdqIndex, as_words, hamming
from likeness.match.policy import hash_tier
from likeness.match.records import create_match
from likeness.settings import HashSettings
from likeness.store import audit
from likeness.store.audit import registry_version
from likeness.store.models import AuditEvent, Bank, Match, Media, ProtectedHash


@dataclass(frozen=True)
class BankRule:
    enabled: bool
    negative: bool
    max_distance: int

    def admits(self, distance: int) -> bool:
        return self.enabled and distance <= self.max_distance


def bank_rules(session: Session, settings: HashSettings) -> dict[str, BankRule]:
    return {
        b.name: BankRule(
            b.enabled, b.negative, min(b.max_distance if b.max_distance is not None else 99, settings.pdq_max_distance)
        )
        for b in session.scalars(select(Bank))
    }


def _usable(settings: HashSettings) -> ColumnElement[bool]:
    """Hashes good enough to match: quality unknown (imported lists) or at least the minimum."""
    return or_(ProtectedHash.quality.is_(None), ProtectedHash.quality >= settings.pdq_min_quality)


@dataclass
class HashIndex:
    """Every usable protected hash in an exact multi-index (``analyze.pdq_index``), plus the bank rules.

    ``version`` is the newest audit event applied; ``refresh`` applies later ``hash.*`` and ``bank.*`` events,
    so protecting one more image never rebuilds the index.
    """

    version: int
    index: PdqIndex
    settings: HashSettings
    banks: dict[str, BankRule]

    @classmethod
    def load(cls, session: Session, settings: HashSettings) -> HashIndex:
        rows = session.execute(select(ProtectedHash.id, ProtectedHash.digest).where(_usable(settings))).all()
        index = PdqIndex(settings.pdq_max_distance)
        index.build(np.array([r.id for r in rows], np.int64), as_words([r.digest for r in rows]))
        return cls(registry_version(session), index, settings, bank_rules(session, settings))

    def refresh(self, session: Session) -> None:
        events = session.execute(
            select(AuditEvent.id, AuditEvent.entity, AuditEvent.action, AuditEvent.entity_id)
            .where(AuditEvent.entity.in_(("hash", "bank")), AuditEvent.id > self.version)
            .order_by(AuditEvent.id)
        ).all()
        added = [e.entity_id for e in events if e.action == "hash.added"]
        rows = {
            r.id: r.digest
            for r in session.execute(
                select(ProtectedHash.id, ProtectedHash.digest).where(
                    ProtectedHash.id.in_(added), _usable(self.settings)
                )
            )
        }
        for event in events:
            if event.action == "hash.added" and event.entity_id in rows:
                self.index.add(event.entity_id, rows[event.entity_id])
            elif event.action == "hash.withdrawn":
                self.index.remove(event.entity_id)
            self.version = event.id
        if any(e.entity == "bank" for e in events):
            self.banks = bank_rules(session, self.settings)

    def near(self, session: Session, *digests: bytes) -> list[tuple[int, int, str]]:
        """(hash id, distance, bank) of the hits its bank admits, the nearest of the given orientations for each
        hash; none at all if any admitted hit is a negative bank's."""
        nearest: dict[int, int] = {}
        for digest in digests:
            for hash_id, distance in self.index.query(digest, self.settings.pdq_max_distance):
                nearest[hash_id] = min(distance, nearest.get(hash_id, distance))
        hits = sorted(nearest.items(), key=lambda hit: (hit[1], hit[0]))
        if not hits:
            return []
        query = select(ProtectedHash.id, ProtectedHash.bank).where(ProtectedHash.id.in_([h for h, _ in hits]))
        bank_of = {row.id: row.bank for row in session.execute(query)}
        admitted = [(h, d, bank_of[h]) for h, d in hits if h in bank_of and self.banks[bank_of[h]].admits(d)]
        if any(self.banks[bank].negative for _, _, bank in admitted):
            return []
        return admitted


def match_hash(session: Session, index: HashIndex, media_id: int, analysis: Analysis, settings: HashSettings) -> int:
    if analysis.pdq is None or analysis.pdq_quality is None or analysis.pdq_quality < settings.pdq_min_quality:
        return 0
    hits = index.near(session, analysis.pdq, *analysis.pdq_variants)
    return _record(session, [(media_id, hash_id, distance) for hash_id, distance, _ in hits], settings)


def search_catalogue(session: Session, hash_ids: list[int], settings: HashSettings) -> int:
    """Newly protected hashes against every catalogued media's PDQ: the catalogue is read once for all of them."""
    rules = bank_rules(session, settings)
    protected = [
        p
        for p in session.scalars(select(ProtectedHash).where(ProtectedHash.id.in_(hash_ids)))
        if not rules[p.bank].negative and rules[p.bank].enabled and (p.quality or 100) >= settings.pdq_min_quality
    ]
    if not protected:
        return 0
    rows = session.execute(
        select(Media.id, Media.pdq).where(Media.pdq.is_not(None), Media.pdq_quality >= settings.pdq_min_quality)
    ).all()
    table = as_words([r.pdq for r in rows if r.pdq is not None])
    vetoed = _negative_hits(session, rules, table)
    hits = []
    for p in protected:
        d = hamming(table, as_words([p.digest])[0])
        near = np.flatnonzero((d <= rules[p.bank].max_distance) & ~vetoed)
        hits += [(rows[int(i)].id, p.id, int(d[i])) for i in near]
    return _record(session, hits, settings)


def _negative_hits(session: Session, rules: dict[str, BankRule], table: np.ndarray) -> np.ndarray:
    """For each row of ``table``, whether an enabled negative bank admits it."""
    vetoed = np.zeros(len(table), dtype=bool)
    negatives = [name for name, rule in rules.items() if rule.negative and rule.enabled]
    if not len(table) or not negatives:
        return vetoed
    for bank, digest in session.execute(
        select(ProtectedHash.bank, ProtectedHash.digest).where(ProtectedHash.bank.in_(negatives))
    ):
        vetoed |= hamming(table, as_words([digest])[0]) <= rules[bank].max_distance
    return vetoed


def _record(session: Session, hits: list[tuple[int, int, int]], settings: HashSettings) -> int:
    """Create matches for (media id, hash id, distance) triples; returns how many are new."""
    created = 0
    for media_id, hash_id, distance in hits:
        tier = hash_tier(distance, settings)
        assert tier is not None
        if create_match(session, kind="hash", media_id=media_id, score=float(distance), tier=tier, hash_id=hash_id):
            created += 1
            _quarantine_flood(session, hash_id, settings.flood_limit)
    return created


def _quarantine_flood(session: Session, hash_id: int, limit: int) -> None:
    """Past ``limit`` matches of one hash within the hour, its new matches of that hour go on hold."""
    recent = Match.hash_id == hash_id, Match.created_at > func.now() - text("interval '1 hour'")
    if (session.scalar(select(func.count()).where(*recent)) or 0) <= limit:
        return
    for match in session.scalars(select(Match).where(*recent, Match.status == "new")):
        match.status = "on_hold"
        audit.record(
            session,
            "match.on_hold",
            "match",
            match.id,
            {"reason": "flood", "hash_id": hash_id, "limit": limit},
            actor="scanner",
        )
