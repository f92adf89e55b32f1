"""Enrolling and withdrawing subjects; an enrolment searches the whole catalogue at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from likeness.errors import EnrollmentError
from likeness.match import faces as face_match
from likeness.registry import subjects as registry
from likeness.services.app import App


@dataclass(frozen=True)
class Enrolled:
    subject_id: int
    references: int
    catalogue_matches: int


def enroll(
    app: App, name: str, photos: list[Path], *, largest_face: bool = False, allowed_domains: list[str] | None = None
) -> Enrolled:
    if not name.strip():
        raise EnrollmentError("a subject needs a name")
    if not photos:
        raise EnrollmentError("at least one reference photo is needed")
    engine = app.face_engine()
    refs = []
    for photo in photos:
        try:
            data = photo.read_bytes()
        except OSError as exc:
            raise EnrollmentError(f"{photo}: {exc.strerror or exc}") from exc
        refs.append(registry.reference_from_photo(data, str(photo), engine, app.settings, largest_face))
    with app.store.transaction() as session:
        subject_id = registry.create_subject(
            session, app.store.box, name.strip(), refs, engine, app.settings, allowed_domains
        )
        found = face_match.search_catalogue(session, subject_id, app.settings.faces)
    return Enrolled(subject_id, len(refs), found)


def list_subjects(app: App) -> list[registry.SubjectInfo]:
    with app.store.transaction() as session:
        return registry.list_subjects(session, app.store.box)


def withdraw(app: App, subject_id: int) -> dict[str, int]:
    with app.store.transaction() as session:
        return registry.remove_subject(session, subject_id)
