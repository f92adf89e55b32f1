"""Subjects: reference photos become embeddings and a quality-weighted centroid; the photos are not kept.

Everything personal about a subject (name, allowed domains, reference embeddings, centroid, face crops, the
personal part of their audit records) is sealed with their own data key (store/crypto.py). Matching decrypts the
embeddings in memory (``probe_vectors``); PostgreSQL never holds them in clear. Withdrawal marks the subject
(``withdraw_subject``); store.keys.erase_withdrawn then destroys the key and deletes the rows. A subject whose key is
gone, or who is marked withdrawn, reads as absent everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import func, select, true, update
from sqlalchemy.orm import Session

from likeness.errors import EnrollmentError, InvalidInput, MediaError, NotFound
from likeness.settings import Settings
from likeness.store import audit
from likeness.store.crypto import Box, DataKey, box_of
from likeness.store.models import Account, Match, Subject, SubjectReference

if TYPE_CHECKING:  # the engine and decoders load only where a photo is enrolled, not to list subjects
    from likeness.analyze.faces import FaceEngine


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
    model: str  # of the reference embeddings: matched only against faces of the same model


def reference_from_photo(
    data: bytes, label: str, engine: FaceEngine, settings: Settings, largest_face: bool = False
) -> Reference:
    """Embed the one face of a reference photo; a photo with none, or several, is refused unless told otherwise."""
    from likeness.analyze.faces import to_face
    from likeness.media import decode

    try:
        media = decode(data, settings.media)
    except MediaError as exc:
        raise EnrollmentError(f"{label}: {exc}") from exc
    faces = engine.faces(media.pixels)
    if not faces:
        raise EnrollmentError(f"{label}: no face found; use a clear, front-facing photo")
    if len(faces) > 1 and not largest_face:
        raise EnrollmentError(
            f"{label}: {len(faces)} faces found; crop the photo to one person or enroll the largest face"
        )
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

    from likeness.analyze.faces import unit

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
    *,
    actor: str,
) -> int:
    center, outliers = _centroid(refs, engine.model, settings)
    key = box.new_key(session)
    domains = sorted(set(allowed_domains or []))
    subject = Subject(
        key_id=key.id,
        name_enc=key.seal_text(name),
        domains_enc=key.seal_json(domains),
        engine=engine.name,
        model=engine.model,
        centroid_enc=key.seal_vector(center),
    )
    session.add(subject)
    session.flush()
    for ref, is_outlier in zip(refs, outliers, strict=True):
        session.add(_reference(key, subject.id, ref, bool(is_outlier), settings.keep_reference_crops))
    details = {"references": len(refs), "outliers": int(outliers.sum()), "engine": engine.name, "model": engine.model}
    personal = {"name": name, "allowed_domains": domains}
    audit.record(session, "subject.enrolled", "subject", subject.id, details, actor=actor, personal=personal, owner=key)
    return subject.id


def _centroid(refs: list[Reference], model: str, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.stack([r.embedding for r in refs])
    weights = np.array([max(r.quality, 0.05) for r in refs], dtype=np.float32)
    return centroid(embeddings, weights, settings.faces.tiers(model).low, settings.faces.outlier_min_refs)


def add_references(
    session: Session, box: Box, subject_id: int, refs: list[Reference], model: str, settings: Settings, *, actor: str
) -> None:
    """More reference photos of an enrolled subject: the centroid and outliers are worked out again over all."""
    subject, key = _active(session, box, subject_id, lock=True)
    if subject.model != model:
        raise InvalidInput(f"subject {subject_id} was enrolled with {subject.model}, not {model}: enroll anew")
    old = list(session.scalars(select(SubjectReference).where(SubjectReference.subject_id == subject_id)))
    kept = [r for r in old if r.embedding_enc is not None]
    earlier = [Reference(key.open_vector(r.embedding_enc), r.quality, np.zeros(0)) for r in kept if r.embedding_enc]
    center, outliers = _centroid(earlier + refs, model, settings)
    for row, is_outlier in zip(kept, outliers[: len(kept)], strict=True):
        row.is_outlier = bool(is_outlier)
    for ref, is_outlier in zip(refs, outliers[len(kept) :], strict=True):
        session.add(_reference(key, subject_id, ref, bool(is_outlier), settings.keep_reference_crops))
    subject.centroid_enc = key.seal_vector(center)
    details = {"references": len(refs), "total": len(kept) + len(refs), "outliers": int(outliers.sum())}
    audit.record(session, "subject.references_added", "subject", subject_id, details, actor=actor)


def set_domains(session: Session, box: Box, subject_id: int, domains: list[str], *, actor: str) -> list[str]:
    """Replace the domains where the subject's face is used with consent; returns the domains taken away (media
    seen there only must now be searched for the subject)."""
    subject, key = _active(session, box, subject_id, lock=True)
    before, after = set(_domains(key, subject)), set(domains)
    subject.domains_enc = key.seal_json(sorted(after))
    personal = {"allowed_domains": sorted(after)}
    details = {"added": len(after - before), "removed": len(before - after)}
    audit.record(
        session, "subject.domains_set", "subject", subject_id, details, actor=actor, personal=personal, owner=key
    )
    return sorted(before - after)


def _reference(key: DataKey, subject_id: int, ref: Reference, is_outlier: bool, keep_crop: bool) -> SubjectReference:
    from likeness.media import jpeg

    return SubjectReference(
        subject_id=subject_id,
        embedding_enc=key.seal_vector(ref.embedding),
        quality=ref.quality,
        is_outlier=is_outlier,
        crop_enc=key.seal(jpeg(ref.chip, quality=90)) if keep_crop else None,
    )


def list_subjects(session: Session, box: Box, only: set[int] | None = None) -> list[SubjectInfo]:
    """Every active subject, or those of ``only`` (a subject account sees itself only)."""
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
        .where(Subject.withdrawn_at.is_(None), Subject.id.in_(only) if only is not None else true())
        .order_by(Subject.id)
    ).all()
    keys = dict(_readable(box, [row[0] for row in rows]))
    return [
        SubjectInfo(s.id, keys[s].open_text(s.name_enc), n or 0, out or 0, m or 0, _domains(keys[s], s), s.model)
        for s, n, out, m in rows
        if s in keys
    ]


def subject_name(session: Session, box: Box, subject_id: int) -> str:
    subject, key = _active(session, box, subject_id)
    return key.open_text(subject.name_enc)


def subject_model(session: Session, subject_id: int) -> str:
    """The face model of the subject's references (only faces of that model are compared with them)."""
    model = session.scalar(select(Subject.model).where(Subject.id == subject_id, Subject.withdrawn_at.is_(None)))
    if model is None:
        raise NotFound(f"no subject {subject_id}")
    return model


def subject_key(session: Session, box: Box, subject_id: int) -> DataKey | None:
    """The subject's key; None when they are withdrawn or unknown."""
    subject = session.get(Subject, subject_id)
    return box.key(subject.key_id) if subject is not None and subject.withdrawn_at is None else None


def probe_vectors(
    session: Session, model: str, subject_id: int | None = None
) -> tuple[list[tuple[int, np.ndarray]], dict[int, list[str]]]:
    """Every active subject's probe vectors (centroid and inlier references), decrypted in memory, and their
    allowed domains: what ``match.faces.SubjectIndex`` is built from."""
    query = select(Subject).where(Subject.model == model, Subject.withdrawn_at.is_(None))
    if subject_id is not None:
        query = query.where(Subject.id == subject_id)
    active = _readable(box_of(session), session.scalars(query.order_by(Subject.id)))
    keys = {s.id: key for s, key in active}
    refs = session.execute(
        select(SubjectReference.subject_id, SubjectReference.embedding_enc).where(
            SubjectReference.subject_id.in_(keys), ~SubjectReference.is_outlier
        )
    ).all()
    rows = [(s.id, key.open_vector(s.centroid_enc)) for s, key in active if s.centroid_enc is not None]
    rows += [(r.subject_id, keys[r.subject_id].open_vector(r.embedding_enc)) for r in refs if r.embedding_enc]
    return rows, {s.id: _domains(key, s) for s, key in active}


def _readable(box: Box, subjects: Iterable[Subject]) -> list[tuple[Subject, DataKey]]:
    """Subjects with their keys; one whose key is gone reads as withdrawn, whatever rows a crash left behind."""
    pairs = [(s, box.key(s.key_id)) for s in subjects]
    return [(s, key) for s, key in pairs if key is not None]


def reference_crop(session: Session, box: Box, subject_id: int) -> bytes | None:
    """The JPEG of the subject's best inlier reference crop, if the operator keeps crops."""
    key = subject_key(session, box, subject_id)
    crop = session.scalar(
        select(SubjectReference.crop_enc)
        .where(
            SubjectReference.subject_id == subject_id,
            SubjectReference.crop_enc.is_not(None),
            ~SubjectReference.is_outlier,
        )
        .order_by(SubjectReference.quality.desc())
        .limit(1)
    )
    return key.open(crop) if key is not None and crop is not None else None


def withdraw_subject(session: Session, subject_id: int, *, actor: str) -> dict[str, int]:
    """Withdrawal, step 1 (store/keys.py): the subject is marked withdrawn and the withdrawal audited; it reads as
    gone from here on, and store.keys.erase_withdrawn destroys the key, then the rows. Returns what goes."""
    subject = session.get(Subject, subject_id, with_for_update=True)
    if subject is None or subject.withdrawn_at is not None:
        raise NotFound(f"no subject {subject_id}")  # a subject whose key is lost can still be withdrawn
    counts = {
        "references": session.scalar(select(func.count()).where(SubjectReference.subject_id == subject_id)) or 0,
        "matches": session.scalar(select(func.count()).where(Match.subject_id == subject_id)) or 0,
    }
    subject.withdrawn_at = func.now()
    # Its accounts stop for good: once the row is gone an unbound subject account would read as one still to enroll.
    session.execute(
        update(Account)
        .where(Account.subject_id == subject_id, Account.disabled_at.is_(None))
        .values(disabled_at=func.now())
    )
    audit.record(session, "subject.withdrawn", "subject", subject_id, counts, actor=actor)
    return counts


def _active(session: Session, box: Box, subject_id: int, lock: bool = False) -> tuple[Subject, DataKey]:
    subject = session.get(Subject, subject_id, with_for_update=lock)
    key = box.key(subject.key_id) if subject is not None and subject.withdrawn_at is None else None
    if subject is None or key is None:
        raise NotFound(f"no subject {subject_id}")
    return subject, key


def _domains(key: DataKey, subject: Subject) -> list[str]:
    return list(key.open_json(subject.domains_enc)) if subject.domains_enc is not None else []
