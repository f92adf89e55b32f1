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
from likeness.registry.subjects import probe_vectors, subject_model
from likeness.settings import FaceSettings
from likeness.store.audit import registry_version
from likeness.store.models import Face


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


@dataclass(frozen=True)
class FaceHit:
    """A face of an analysis like a subject's: nothing stored (``match.indexes.match_analysis``)."""

    subject_id: int
    similarity: float
    tier: str
    face_idx: int


def hits(index: SubjectIndex, faces: list[np.ndarray], settings: FaceSettings) -> list[FaceHit]:
    """Every (face, subject) pair at or above the low tier, by face, leaving out subjects well below the face's
    best one (``runner_up_margin``)."""
    if not faces:
        return []
    subject_ids, best = index.scores(np.stack(faces))
    tiers = settings.tiers(index.model)
    found = []
    near_best = best >= best.max(axis=1, keepdims=True, initial=-1.0) - settings.runner_up_margin
    for face_i, subj_i in np.argwhere((best >= tiers.low) & near_best):
        score = float(best[face_i, subj_i])
        tier = face_tier(score, tiers)
        assert tier is not None
        found.append(FaceHit(int(subject_ids[subj_i]), score, tier, int(face_i)))
    return found


def match_faces(
    session: Session,
    index: SubjectIndex,
    media_id: int,
    faces: list[tuple[int, np.ndarray]],
    settings: FaceSettings,
    *,
    actor: str,
    only: int | None = None,
) -> int:
    """Match the stored faces (id, embedding) of one media against every subject (or the subject ``only``, still
    judged against every subject of ``index``); returns new matches. A subject is left out while every place the
    media was seen is allowlisted for them."""
    found = [h for h in hits(index, [e for _, e in faces], settings) if only is None or h.subject_id == only]
    if not found:
        return 0
    seen_at = locations(session, media_id)
    created = 0
    for hit in found:
        if suppressed(seen_at, index.domains[hit.subject_id]):
            continue
        created += create_match(
            session,
            kind="face",
            media_id=media_id,
            score=hit.similarity,
            tier=hit.tier,
            subject_id=hit.subject_id,
            face_id=faces[hit.face_idx][0],
            actor=actor,
        )
    return created


def search_catalogue(session: Session, subject_id: int, settings: FaceSettings, *, actor: str) -> int:
    """A newly enrolled subject against every catalogued face: exact, so no face within the threshold is missed.
    Also after a change that can only add matches (references added, an allowlisted domain removed): the matches
    already there are kept, only new ones are created."""
    model = subject_model(session, subject_id)
    index = SubjectIndex.load(session, model, subject_id)
    if not len(index.owners):
        return 0
    everyone = SubjectIndex.load(session, model)  # a face goes to the new subject only if it is among its best
    # One pass over the table whatever the number of probes: the nearest probe decides.
    nearest = func.least(*(Face.embedding.cosine_distance(probe) for probe in index.probes))
    rows = session.execute(
        select(Face.id, Face.media_id, Face.embedding).where(
            Face.model == model, nearest <= 1.0 - settings.tiers(model).low
        )
    )
    by_media: dict[int, list[tuple[int, np.ndarray]]] = {}
    for face_id, media_id, embedding in rows:
        by_media.setdefault(media_id, []).append((face_id, np.asarray(embedding, np.float32)))
    return sum(
        match_faces(session, everyone, media_id, faces, settings, actor=actor, only=subject_id)
        for media_id, faces in by_media.items()
    )


def stored_faces(session: Session, media_id: int) -> dict[str, list[tuple[int, np.ndarray]]]:
    """A catalogued media's faces by model, (face id, embedding): to match it again without its bytes."""
    by_model: dict[str, list[tuple[int, np.ndarray]]] = {}
    rows = session.execute(select(Face.id, Face.model, Face.embedding).where(Face.media_id == media_id))
    for face_id, model, embedding in rows:
        by_model.setdefault(model, []).append((face_id, np.asarray(embedding, np.float32)))
    return by_model
