"""The in-memory matching indexes of one process, reloaded from the store when the registry changes.

Built from the registry through its functions (registry.subjects.probe_vectors, registry.hashes), never the system
of record. ``Indexes.match`` stores what a freshly catalogued media matched; ``match_analysis`` says what an
analysis would match and stores nothing (an uploaded picture that is checked, not kept).
"""

from __future__ import annotations

import threading

import numpy as np
from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.catalogue.ingest import Ingested
from likeness.match import faces as face_match
from likeness.match import hashes as hash_match
from likeness.match.faces import FaceHit
from likeness.match.hashes import Hit as HashHit
from likeness.settings import Settings
from likeness.store.audit import registry_version

Hit = FaceHit | HashHit


class Indexes:
    """Subject matrices per face model and the protected-hash index; safe to share between threads (an API
    process serves requests from a thread pool)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._version = -1
        self._subjects: dict[str, face_match.SubjectIndex] = {}
        self._hashes: hash_match.HashIndex | None = None
        self._lock = threading.RLock()

    def _refresh(self, session: Session) -> None:
        version = registry_version(session)
        if version == self._version:
            return
        self._version, self._subjects = version, {}  # subject matrices are small: reloaded whole
        if self._hashes is not None:
            self._hashes.refresh(session)  # protected hashes: only the changes since the last look

    def subjects(self, session: Session, model: str) -> face_match.SubjectIndex:
        with self._lock:
            self._refresh(session)
            if model not in self._subjects:
                self._subjects[model] = face_match.SubjectIndex.load(session, model)
            return self._subjects[model]

    def hashes(self, session: Session) -> hash_match.HashIndex:
        with self._lock:
            self._refresh(session)
            if self._hashes is None:
                self._hashes = hash_match.HashIndex.load(session, self.settings.hashes)
            return self._hashes

    def match(self, session: Session, stored: Ingested, analysis: Analysis, *, actor: str) -> tuple[int, int]:
        """New matches (faces, hashes) for a freshly ingested media."""
        by_model: dict[str, list[tuple[int, np.ndarray]]] = {}
        for row in stored.faces:
            face = analysis.faces[row.face_idx]
            by_model.setdefault(face.model, []).append((row.id, face.embedding))
        face_matches = self.match_faces(session, stored.media_id, by_model, actor=actor)
        index, settings = self.hashes(session), self.settings.hashes
        hash_matches = hash_match.match_hash(session, index, stored.media_id, analysis, settings, actor=actor)
        return face_matches, hash_matches

    def match_faces(
        self, session: Session, media_id: int, by_model: dict[str, list[tuple[int, np.ndarray]]], *, actor: str
    ) -> int:
        """Stored faces (id, embedding) of one media, by model, against every subject; returns new matches."""
        return sum(
            face_match.match_faces(
                session, self.subjects(session, model), media_id, faces, self.settings.faces, actor=actor
            )
            for model, faces in by_model.items()
        )

    def analyse(self, session: Session, analysis: Analysis) -> list[Hit]:
        """What this analysis matches, face hits then hash hits; nothing is stored."""
        found: list[Hit] = []
        by_model: dict[str, list[int]] = {}
        for n, face in enumerate(analysis.faces):
            by_model.setdefault(face.model, []).append(n)
        for model, idxs in by_model.items():
            hits = face_match.hits(
                self.subjects(session, model), [analysis.faces[i].embedding for i in idxs], self.settings.faces
            )
            found += [FaceHit(h.subject_id, h.similarity, h.tier, idxs[h.face_idx]) for h in hits]
        found += self.hashes(session).near(session, hash_match.probes(analysis, self.settings.hashes))
        return found


def match_analysis(
    session: Session, analysis: Analysis, settings: Settings, indexes: Indexes | None = None
) -> list[Hit]:
    """What an analysis matches (face hits: subject, similarity, tier, face; hash hits: hash, bank, submission id,
    distance, frame), storing nothing. Pass the process's ``indexes`` to reuse them; without, they are built for
    this one call. Allowlisted domains do not apply: an analysis was seen nowhere."""
    return (indexes or Indexes(settings)).analyse(session, analysis)
