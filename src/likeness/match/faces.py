"""Face matching. The subject registry is a small in-memory matrix (exact); the catalogue is searched with
pgvector's exact cosine scan (bench/catalogue_search.py measured it against numpy; docs/benchmarks.md)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from likeness.catalogue.ingest import locations
from likeness.match.policy import face_tier, suppressed
from likeness.match.records import create_match
from likeness.registry.subjects import probe_vectors
from likeness.settings import FaceSettings
from likeness.store.audit import registry_version
from likeness.store.models import Face, Subject


@dataclass
class SubjectIndex:
    """Every subject's probe vectors (inlier references and centroid), grouped by subject.

    A face's score for a subject is its best cosine similarity over that subject's probes.
    """

    model: str  # vectors of one model compare with each other, whichever engine computed them
    version: int
    probes: np.ndarray  # (p, d) float32, rows grouped by owner
    owners: np.ndarray  # (p,) subject id of each probe row
    domains: dict[int, list[str]]

    @classmethod
    def load(cls, session: Session, model: str, subject_id: int | None = None) -> SubjectIndex:
        version = registry_version(session)
        # Sealed with each subject's key in the store: the registry decrypts them in memory only.
        rows, domains = probe_vectors(session, model, subject_id)
        rows.sort(key=lambda r: r[0])
        probes = np.stack([v for _, v in rows]) if rows else np.zeros((0, 0), np.float32)
        owners = np.array([o for o, _ in rows], dtype=np.int64)
        return cls(model, version, probes, owners, domains)

    def scores(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(subject ids, (n_faces, n_subjects) best similarity per subject)."""
        if not len(self.owners) or not len(embeddings):
            return np.zeros(0, np.int64), np.zeros((len(embeddings), 0), np.float32)
        sims = embeddings.astype(np.float32) @ self.probes.T
        starts = np.flatnonzero(np.r_[True, self.owners[1:] != self.owners[:-1]])
        return self.owners[starts], np.maximum.reduceat(sims, starts, axis=1)


def match_faces(
    session: Session, index: SubjectIndex, media_id: int, faces: list[tuple[int, np.ndarray]], settings: FaceSettings
) -> int:
    """Match freshly ingested faces of one media against every subject; returns new matches."""
    if not faces:
        return 0
    subject_ids, best = index.scores(np.stack([e for _, e in faces]))
    tiers = settings.tiers(index.model)
    hits = np.argwhere(best >= tiers.low)
    if not len(hits):
        return 0
    seen_at = locations(session, media_id)
    created = 0
    for face_i, subj_i in hits:
        subject_id, score = int(subject_ids[subj_i]), float(best[face_i, subj_i])
        if suppressed(seen_at, index.domains[subject_id]):
            continue
        tier = face_tier(score, tiers)
        assert tier is not None
        created += create_match(
            session,
            kind="face",
            media_id=media_id,
            score=score,
            tier=tier,
            subject_id=subject_id,
            face_id=faces[face_i][0],
        )
    return created


def search_catalogue(session: Session, subject_id: int, settings: FaceSettings) -> int:
    """A newly enrolled subject against every catalogued face: exact, so no face within the threshold is missed."""
    subject = session.get(Subject, subject_id)
    assert subject is not None
    index = SubjectIndex.load(session, subject.model, subject_id)
    # One pass over the table whatever the number of probes: the nearest probe decides.
    nearest = func.least(*(Face.embedding.cosine_distance(probe) for probe in index.probes))
    rows = session.execute(
        select(Face.id, Face.media_id, Face.embedding).where(
            Face.model == subject.model, nearest <= 1.0 - settings.tiers(subject.model).low
        )
    )
    by_media: dict[int, list[tuple[int, np.ndarray]]] = {}
    for face_id, media_id, embedding in rows:
        by_media.setdefault(media_id, []).append((face_id, np.asarray(embedding, np.float32)))
    return sum(match_faces(session, index, media_id, faces, settings) for media_id, faces in by_media.items())
