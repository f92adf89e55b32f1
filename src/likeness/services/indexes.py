"""The in-memory matching indexes of one process, reloaded from the store when the registry changes."""

from __future__ import annotations

import numpy as np
from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.catalogue.ingest import Ingested
from likeness.match import faces as face_match
from likeness.match import hashes as hash_match
from likeness.settings import Settings
from likeness.store.audit import registry_version


class Indexes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._version = -1
        self._subjects: dict[str, face_match.SubjectIndex] = {}
        self._hashes: hash_match.HashIndex | None = None

    def _refresh(self, session: Session) -> None:
        version = registry_version(session)
        if version == self._version:
            return
        self._version, self._subjects = version, {}  # subject matrices are small: reloaded whole
        if self._hashes is not None:
            self._hashes.refresh(session)  # protected hashes: only the changes since the last look

    def match(self, session: Session, stored: Ingested, analysis: Analysis) -> tuple[int, int]:
        """New matches (faces, hashes) for a freshly ingested media."""
        self._refresh(session)
        face_matches = 0
        by_model: dict[str, list[tuple[int, np.ndarray]]] = {}
        for row in stored.faces:
            face = analysis.faces[row.face_idx]
            by_model.setdefault(face.model, []).append((row.id, face.embedding))
        for model, faces in by_model.items():
            if model not in self._subjects:
                self._subjects[model] = face_match.SubjectIndex.load(session, model)
            face_matches += face_match.match_faces(
                session, self._subjects[model], stored.media_id, faces, self.settings.faces
            )
        if self._hashes is None:
            self._hashes = hash_match.HashIndex.load(session, self.settings.hashes)
        hash_matches = hash_match.match_hash(session, self._hashes, stored.media_id, analysis, self.settings.hashes)
        return face_matches, hash_matches
