"""Subjects: reference photos become embeddings and a quality-weighted centroid; the photos are not kept."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from likeness.analyze.faces import FaceEngine, to_face, unit
from likeness.errors import EnrollmentError, MediaError, NotFound
from likeness.media import decode, jpeg
from likeness.settings import Settings
from likeness.store import audit
from likeness.store.crypto import Box
from likeness.store.models import Match, Subject, SubjectReference


@dataclass(frozen=True)
class Reference:
    embedding: np.ndarray
    quality: float
    chip: np.ndarray


@dataclass(frozen=True)
class SubjectInfo:
    id: int
    name: str
    references: int
    outliers: int
    matches: int
    allowed_domains: list[str]


def reference_from_photo(
    data: bytes, label: str, engine: FaceEngine, settings: Settings, largest_face: bool = False
) -> Reference:
    """Embed the one face of a reference photo; a photo with none, or several, is refused unless told otherwise."""
    try:
        media = decode(data, settings.media)
    except MediaError as exc:
        raise EnrollmentError(f"{label}: {exc}") from exc
    faces = engine.faces(media.pixels)
    if not faces:
        raise EnrollmentError(f"{label}: no face found; use a clear, front-facing photo")
    if len(faces) > 1 and not largest_face:
        raise EnrollmentError(f"{label}: {len(faces)} faces found; crop the photo to one person or pass --largest-face")
    face = max(faces, key=lambda f: f.box[2] * f.box[3])
    return Reference(face.embedding, to_face(face, media.scale, engine).quality, face.chip)


def centroid(
    embeddings: np.ndarray, weights: np.ndarray, outlier_below: float, min_refs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quality-weighted mean direction and an outlier mask.

    With ``min_refs`` or more references, the reference least like the current centroid is dropped while its
    similarity to the centroid of the *others* is under ``outlier_below`` (a wrong person or a bad photo),
    one at a time so that one stranger cannot drag the good references down with it. Two always remain.
    """

    def direction(rows: np.ndarray) -> np.ndarray:
        return unit((embeddings[rows] * weights[rows, None]).sum(axis=0))

    outliers = np.zeros(len(embeddings), dtype=bool)
    while len(embeddings) >= min_refs and (~outliers).sum() > 2:
        keep = np.flatnonzero(~outliers)
        worst = keep[np.argmin(embeddings[keep] @ direction(keep))]
        if float(embeddings[worst] @ direction(keep[keep != worst])) >= outlier_below:
            break
        outliers[worst] = True
    return direction(np.flatnonzero(~outliers)), outliers


def create_subject(
    session: Session,
    box: Box,
    name: str,
    refs: list[Reference],
    engine: FaceEngine,
    settings: Settings,
    allowed_domains: list[str] | None = None,
) -> int:
    embeddings = np.stack([r.embedding for r in refs])
    weights = np.array([max(r.quality, 0.05) for r in refs], dtype=np.float32)
    center, outliers = centroid(embeddings, weights, settings.faces.tier_low, settings.faces.outlier_min_refs)
    subject = Subject(
        name_enc=box.seal_text(name),
        allowed_domains=sorted(set(allowed_domains or [])),
        engine=engine.name,
        model=engine.model,
        centroid=center,
    )
    session.add(subject)
    session.flush()
    for ref, is_outlier in zip(refs, outliers, strict=True):
        crop = box.seal(jpeg(ref.chip, quality=90)) if settings.keep_reference_crops else None
        session.add(
            SubjectReference(
                subject_id=subject.id,
                embedding=ref.embedding,
                quality=ref.quality,
                is_outlier=bool(is_outlier),
                crop_enc=crop,
            )
        )
    audit.record(
        session,
        "subject.enrolled",
        "subject",
        subject.id,
        {
            "references": len(refs),
            "outliers": int(outliers.sum()),
            "engine": engine.name,
            "model": engine.model,
            "allowed_domains": subject.allowed_domains,
        },
    )
    return subject.id


def list_subjects(session: Session, box: Box) -> list[SubjectInfo]:
    refs = (
        select(
            SubjectReference.subject_id,
            func.count().label("n"),
            func.count().filter(SubjectReference.is_outlier).label("out"),
        )
        .group_by(SubjectReference.subject_id)
        .subquery()
    )
    hits = select(Match.subject_id, func.count().label("m")).group_by(Match.subject_id).subquery()
    rows = session.execute(
        select(Subject, refs.c.n, refs.c.out, hits.c.m)
        .outerjoin(refs, refs.c.subject_id == Subject.id)
        .outerjoin(hits, hits.c.subject_id == Subject.id)
        .order_by(Subject.id)
    )
    return [
        SubjectInfo(s.id, box.open_text(s.name_enc), n or 0, out or 0, m or 0, list(s.allowed_domains))
        for s, n, out, m in rows
    ]


def subject_name(session: Session, box: Box, subject_id: int) -> str:
    subject = session.get(Subject, subject_id)
    if subject is None:
        raise NotFound(f"no subject {subject_id}")
    return box.open_text(subject.name_enc)


def remove_subject(session: Session, subject_id: int) -> dict[str, int]:
    """Withdrawal: the subject, every reference embedding and every match go, in one transaction."""
    if session.get(Subject, subject_id) is None:
        raise NotFound(f"no subject {subject_id}")
    counts = {
        "references": session.scalar(select(func.count()).where(SubjectReference.subject_id == subject_id)) or 0,
        "matches": session.scalar(select(func.count()).where(Match.subject_id == subject_id)) or 0,
    }
    session.execute(delete(Match).where(Match.subject_id == subject_id))
    session.execute(delete(SubjectReference).where(SubjectReference.subject_id == subject_id))
    session.execute(delete(Subject).where(Subject.id == subject_id))
    audit.record(session, "subject.withdrawn", "subject", subject_id, counts)
    return counts
