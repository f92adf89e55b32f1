"""Enrolling and withdrawing subjects; an enrolment searches the whole catalogue at once.

Withdrawal is crypto-shredding (store/keys.py): the subject is marked withdrawn in one transaction, then their key
is destroyed and their rows deleted in the next; every copy of their data that PostgreSQL or a backup kept is
unreadable from then on. A crash between the two is finished at the next start.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from likeness.errors import EnrollmentError, InvalidInput, LikenessError
from likeness.registry import subjects as registry
from likeness.services.app import App
from likeness.sources import MediaRef, read_file
from likeness.store import keys


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
        found = _search_catalogue(session, subject_id, app)
    return Enrolled(subject_id, len(refs), found)


@dataclass(frozen=True)
class Imported:
    """One person of an imported folder: enrolled, already there (left as it was), or refused (no usable photo)."""

    name: str
    subject_id: int | None
    references: int
    catalogue_matches: int
    refused: list[str]  # photos left out, each with its reason
    already_enrolled: bool = False


def import_folder(app: App, folder: Path, *, largest_face: bool = False) -> list[Imported]:
    """Enroll one subject per sub-folder (named after it, every photo in it a reference), as face_recognition's
    known-people folder; the models are loaded once for all. A person already enrolled under that name is left as
    is, so importing the same folder again changes nothing."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder")
    people = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise InvalidInput(f"{folder}: no sub-folders (one per person, named after them)")
    enrolled = {s.name: s.id for s in list_subjects(app)}
    return [
        Imported(p.name, enrolled[p.name], 0, 0, [], already_enrolled=True)
        if p.name in enrolled
        else _import_person(app, p, largest_face)
        for p in people
    ]


def _import_person(app: App, folder: Path, largest_face: bool) -> Imported:
    refs, refused = [], []
    for photo in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        try:
            data = read_file(MediaRef(str(photo), raw_path=os.fsencode(photo)), app.settings.media.max_bytes)
            refs.append(registry.reference_from_photo(data, photo.name, app.face_engine(), app.settings, largest_face))
        except LikenessError as exc:
            refused.append(str(exc))
    if not refs:
        return Imported(folder.name, None, 0, 0, refused)
    with app.store.transaction() as session:
        subject_id = registry.create_subject(session, app.store.box, folder.name, refs, app.face_engine(), app.settings)
        found = _search_catalogue(session, subject_id, app)
    return Imported(folder.name, subject_id, len(refs), found, refused)


def _search_catalogue(session: Session, subject_id: int, app: App) -> int:
    from likeness.match import faces as face_match  # with the matching stack: only where someone is enrolled

    return face_match.search_catalogue(session, subject_id, app.settings.faces)


def list_subjects(app: App) -> list[registry.SubjectInfo]:
    with app.store.transaction() as session:
        return registry.list_subjects(session, app.store.box)


def withdraw(app: App, subject_id: int) -> dict[str, int]:
    with app.store.transaction() as session:
        counts = registry.withdraw_subject(session, subject_id)
    with app.store.transaction() as session:
        keys.erase_withdrawn(session)
    return counts
