"""PDQ matching by exact Hamming distance (every hash within the threshold, never approximate).

Scans check new media against every protected hash through the multi-index; a newly protected hash is checked
against the catalogue by one vectorised pass over every catalogued PDQ (one query does not repay an index).
Banks decide what a hit means: a disabled bank's hits are ignored, a bank's own threshold can only tighten the
global one, and a hit in a negative bank (known false positives) means no hash match for that media.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy import func, literal, select, text
from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.analyze.pdq_index import PdqIndex, as_words, hamming
from likeness.analyze.vpdq import match_percent
from likeness.match.policy import hash_tier
from likeness.match.records import create_match
from likeness.registry import hashes as registry
from likeness.settings import HashSettings
from likeness.store import audit
from likeness.store.audit import registry_version
from likeness.store.models import AuditEvent, FrameHash, Match, Media


@dataclass(frozen=True)
class BankRule:
    enabled: bool
    negative: bool
    max_distance: int

    def admits(self, distance: int) -> bool:
        return self.enabled and distance <= self.max_distance


def bank_rules(session: Session, settings: HashSettings) -> dict[str, BankRule]:
    return {
        b.bank: BankRule(
            b.enabled, b.negative, min(b.max_distance if b.max_distance is not None else 99, settings.pdq_max_distance)
        )
        for b in registry.banks(session, counted=False)
    }


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
        rows = registry.usable_digests(session, settings.pdq_min_quality)
        index = PdqIndex(settings.pdq_max_distance)
        index.build(np.array([i for i, _ in rows], np.int64), as_words([d for _, d in rows]))
        return cls(registry_version(session), index, settings, bank_rules(session, settings))

    def refresh(self, session: Session) -> None:
        events = session.execute(
            select(AuditEvent.id, AuditEvent.entity, AuditEvent.action, AuditEvent.entity_id)
            .where(AuditEvent.entity.in_(("hash", "bank")), AuditEvent.id > self.version)
            .order_by(AuditEvent.id)
        ).all()
        added = [e.entity_id for e in events if e.action == "hash.added"]
        rows = dict(registry.usable_digests(session, self.settings.pdq_min_quality, added)) if added else {}
        for event in events:
            if event.action == "hash.added" and event.entity_id in rows:
                self.index.add(event.entity_id, rows[event.entity_id])
            elif event.action == "hash.withdrawn":
                self.index.remove(event.entity_id)
            self.version = event.id
        if any(e.entity == "bank" for e in events):
            self.banks = bank_rules(session, self.settings)

    def near(self, session: Session, probes: list[tuple[int, bytes]]) -> list[Hit]:
        """The hits its bank admits for (frame, hash) probes, the nearest probe for each protected hash; none at
        all if any admitted hit is a negative bank's. ``media_id`` is left 0 for the caller."""
        nearest: dict[int, tuple[int, int]] = {}
        for frame, digest in probes:
            for hash_id, distance in self.index.query(digest, self.settings.pdq_max_distance):
                if hash_id not in nearest or distance < nearest[hash_id][0]:
                    nearest[hash_id] = distance, frame
        if not nearest:
            return []
        owner = registry.owners(session, list(nearest))
        admitted = [
            Hit(0, h, d, f, *owner[h])
            for h, (d, f) in nearest.items()
            if h in owner and owner[h][0] in self.banks and self.banks[owner[h][0]].admits(d)
        ]
        if any(self.banks[hit.bank].negative for hit in admitted):
            return []
        return sorted(admitted, key=lambda hit: (hit.distance, hit.hash_id))


@dataclass(frozen=True)
class Hit:
    media_id: int  # 0 where nothing is stored (match_analysis, lookups)
    hash_id: int
    distance: int
    frame: int
    bank: str = ""
    submission: str | None = None  # the submission's id (random): its label is for reviewers only


def probes(analysis: Analysis, settings: HashSettings) -> list[tuple[int, bytes]]:
    """Every sampled frame's PDQ, and frame 0 in all its orientations: what an analysis is looked up by."""
    found = list(analysis.frame_pdqs)
    if analysis.pdq is not None and (analysis.pdq_quality or 0) >= settings.pdq_min_quality:
        found += [(0, digest) for digest in (analysis.pdq, *analysis.pdq_variants)]
    return found


def match_hash(
    session: Session, index: HashIndex, media_id: int, analysis: Analysis, settings: HashSettings, *, actor: str
) -> int:
    """Every sampled frame against the banks: frame 0 in all its orientations, later frames as they are."""
    hits = [replace(hit, media_id=media_id) for hit in index.near(session, probes(analysis, settings))]
    frames = {media_id: _own_hashes(analysis)}
    return _record(session, hits, _video_shares(session, frames, hits, settings), settings, actor)


def match_stored(session: Session, index: HashIndex, media_id: int, settings: HashSettings, *, actor: str) -> int:
    """A catalogued media's stored frame hashes against the banks (a media seen again: its bytes are not read)."""
    frames = [(f, d) for m, f, d in _catalogue_frames(session, settings, media_id)]
    hits = [replace(hit, media_id=media_id) for hit in index.near(session, frames)]
    if not hits:
        return 0
    shares = _video_shares(session, {media_id: [d for _, d in frames]}, hits, settings)
    return _record(session, hits, shares, settings, actor)


def _own_hashes(analysis: Analysis) -> list[bytes]:
    """One hash per sampled frame (no orientations, no border-trimmed copies): the media as vPDQ features."""
    return ([analysis.pdq] if analysis.pdq is not None else []) + list(analysis.own_frame_pdqs().values())


def search_catalogue(session: Session, hash_ids: list[int], settings: HashSettings, *, actor: str) -> int:
    """Protected hashes against every catalogued frame's PDQ: the catalogue is read once for all of them. For newly
    protected hashes, and again when a rule that kept matches away is lifted (a bank enabled, a veto gone): the
    matches already there are kept, only new ones are created."""
    rules = bank_rules(session, settings)
    protected = [
        p
        for p in registry.banked(session, hash_ids)
        if not rules[p.bank].negative and rules[p.bank].enabled and (p.quality or 100) >= settings.pdq_min_quality
    ]
    if not protected:
        return 0
    rows = _catalogue_frames(session, settings)
    table = as_words([digest for _, _, digest in rows])
    vetoed = _negative_hits(session, rules, table)
    hits = []
    for p in protected:
        d = hamming(table, as_words([p.digest])[0])
        hits += [
            Hit(rows[i][0], p.id, int(d[i]), rows[i][1], p.bank)
            for i in np.flatnonzero((d <= rules[p.bank].max_distance) & ~vetoed)
        ]
    hits.sort(key=lambda hit: (hit.distance, hit.frame))  # a media hit in several frames keeps its nearest
    hit_media = {hit.media_id for hit in hits}
    frames: dict[int, list[bytes]] = {}
    for media_id, _, digest in rows:  # only the media that were hit: the catalogue may hold millions
        if media_id in hit_media:
            frames.setdefault(media_id, []).append(digest)
    return _record(session, hits, _video_shares(session, frames, hits, settings), settings, actor)


def _catalogue_frames(
    session: Session, settings: HashSettings, media_id: int | None = None
) -> list[tuple[int, int, bytes]]:
    """(media id, frame, PDQ) of every usable catalogued frame (of one media, or all): frame 0 from the media row,
    later ones from ``frame_hashes``."""
    first = select(Media.id, literal(0), Media.pdq).where(
        Media.pdq.is_not(None), Media.pdq_quality >= settings.pdq_min_quality
    )
    later = select(FrameHash.media_id, FrameHash.frame, FrameHash.digest)
    if media_id is not None:
        first, later = first.where(Media.id == media_id), later.where(FrameHash.media_id == media_id)
    return [(r[0], r[1], r[2]) for r in session.execute(first.union_all(later)) if r[2] is not None]


def _video_shares(
    session: Session, frames: dict[int, list[bytes]], hits: list[Hit], settings: HashSettings
) -> dict[tuple[int, int], dict[str, object]]:
    """vPDQ's video-level verdict for hits on a protected video's frames, per (media, hash): the share of the
    media's frames found in the protected video and the reverse, and whether both reach the thresholds."""
    videos = registry.video_submissions(session, {hit.hash_id for hit in hits})
    targets = {s: registry.video_digests(session, s, settings.pdq_min_quality) for s in set(videos.values())}
    verdicts: dict[tuple[int, str | None], dict[str, object]] = {}
    for hit in hits:
        if hit.hash_id in videos and (hit.media_id, videos[hit.hash_id]) not in verdicts:
            submission = videos[hit.hash_id]
            q, t = match_percent(frames[hit.media_id], targets[submission], settings.pdq_max_distance)
            verdicts[hit.media_id, submission] = {
                "submission": submission,
                "query_percent": round(q, 1),
                "target_percent": round(t, 1),
                "video_match": q >= settings.vpdq_query_match_percent and t >= settings.vpdq_target_match_percent,
            }
    return {(h.media_id, h.hash_id): verdicts[h.media_id, videos[h.hash_id]] for h in hits if h.hash_id in videos}


def _negative_hits(session: Session, rules: dict[str, BankRule], table: np.ndarray) -> np.ndarray:
    """For each row of ``table``, whether an enabled negative bank admits it."""
    vetoed = np.zeros(len(table), dtype=bool)
    negatives = [name for name, rule in rules.items() if rule.negative and rule.enabled]
    if not len(table) or not negatives:
        return vetoed
    for bank, digest in registry.digests_in(session, negatives):
        vetoed |= hamming(table, as_words([digest])[0]) <= rules[bank].max_distance
    return vetoed


def _record(
    session: Session,
    hits: list[Hit],
    shares: dict[tuple[int, int], dict[str, object]],
    settings: HashSettings,
    actor: str,
) -> int:
    """Create matches for hits (the first hit of a hash on a media wins: callers sort nearest first)."""
    created = 0
    for hit in hits:
        tier = hash_tier(hit.distance, settings)
        assert tier is not None
        detail = shares.get((hit.media_id, hit.hash_id))
        if create_match(
            session,
            kind="hash",
            media_id=hit.media_id,
            score=float(hit.distance),
            tier=tier,
            hash_id=hit.hash_id,
            frame=hit.frame,
            detail=detail,
            actor=actor,
        ):
            created += 1
            _quarantine_flood(session, hit.hash_id, settings.flood_limit)
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
