"""Enrolling and withdrawing subjects; an enrolment searches the whole catalogue at once.

Photos come in as bytes (each shell reads them its way). Enrolling someone who may be enrolled already, under the
same name or with a face the registry knows at the high tier, raises ``PossibleDuplicate``: the caller chooses to
add the photos to that subject (``add_to``) or to make a new one (``force_new``).

Withdrawal is crypto-shredding (store/keys.py): the subject is marked withdrawn in one transaction, then their key
is destroyed and their rows deleted in the next; every copy of their data that PostgreSQL or a backup kept is
unreadable from then on. A crash between the two is finished at the next start.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from likeness.errors import EnrollmentError, InvalidInput, LikenessError, NotFound, PossibleDuplicate
from likeness.registry import subjects as registry
from likeness.registry.subjects import Reference, SubjectInfo
from likeness.services.app import App
from likeness.sources import MediaRef, read_file
from likeness.store import keys

__all__ = ["Enrolled", "Imported", "Photo", "PossibleDuplicate", "SubjectInfo", "enroll", "get_subject"]


@dataclass(frozen=True)
class Photo:
    """A reference photo: a name for messages (a file name, an upload's name) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class Enrolled:
    subject_id: int
    references: int
    catalogue_matches: int
    added_to_existing: bool = False


def enroll(
    app: App,
    name: str,
    photos: list[Photo],
    *,
    actor: str,
    largest_face: bool = False,
    allowed_domains: list[str] | None = None,
    add_to: int | None = None,
    force_new: bool = False,
    on_created: Callable[[Session, int], None] | None = None,
) -> Enrolled:
    """Enroll a subject (or, with ``add_to``, add references to one) and search the catalogue for them.
    ``on_created(session, subject_id)`` runs in the enrolment's transaction once the subject exists (a portal's
    account bound to it, with its consent): both happen, or neither."""
    if not name.strip() and add_to is None:
        raise EnrollmentError("a subject needs a name")
    if not photos:
        raise EnrollmentError("at least one reference photo is needed")
    if add_to is not None and force_new:
        raise InvalidInput("add to a subject or force a new one, not both")
    engine = app.face_engine()
    refs = [registry.reference_from_photo(p.data, p.name, engine, app.settings, largest_face) for p in photos]
    with app.store.transaction() as session:
        if add_to is not None:
            registry.add_references(session, app.store.box, add_to, refs, engine.model, app.settings, actor=actor)
            subject_id = add_to
        else:
            if not force_new:
                _refuse_duplicate(session, app, name.strip(), refs, engine.model)
            subject_id = registry.create_subject(
                session, app.store.box, name.strip(), refs, engine, app.settings, allowed_domains, actor=actor
            )
            if on_created is not None:
                on_created(session, subject_id)
        found = _search_catalogue(session, subject_id, app, actor)
    return Enrolled(subject_id, len(refs), found, added_to_existing=add_to is not None)


def _refuse_duplicate(session: Session, app: App, name: str, refs: list[Reference], model: str) -> None:
    """The same name (case and spacing aside), or a reference face at the high tier of an enrolled subject."""
    same_name = {s.id for s in registry.list_subjects(session, app.store.box) if _folded(s.name) == _folded(name)}
    same_face = _same_face(session, app, refs, model)
    candidates = sorted(same_name | same_face)
    if candidates:
        why = " and ".join(w for w, ids in (("the same name", same_name), ("a face like theirs", same_face)) if ids)
        raise PossibleDuplicate(
            f"possibly enrolled already as subject(s) {', '.join(map(str, candidates))} ({why}): add these photos "
            "to one of them, or enroll a new subject on purpose",
            candidates,
        )


def _same_face(session: Session, app: App, refs: list[Reference], model: str) -> set[int]:
    from likeness.match import faces as face_match  # with the matching stack: only where someone is enrolled

    index = face_match.SubjectIndex.load(session, model)
    high = app.settings.faces.tiers(model).high
    return {
        h.subject_id
        for h in face_match.hits(index, [r.embedding for r in refs], app.settings.faces)
        if h.similarity >= high
    }


def _folded(name: str) -> str:
    return " ".join(name.casefold().split())


@dataclass(frozen=True)
class Imported:
    """One person of an imported folder: enrolled, already there (left as it was), or refused (no usable photo)."""

    name: str
    subject_id: int | None
    references: int
    catalogue_matches: int
    refused: list[str]  # photos left out, each with its reason
    already_enrolled: bool = False


def import_folder(app: App, folder: Path, *, actor: str, largest_face: bool = False) -> list[Imported]:
    """Enroll one subject per sub-folder (named after it, every photo in it a reference), as face_recognition's
    known-people folder; the models are loaded once for all. A person already enrolled under that name is left as
    is, so importing the same folder again changes nothing; one whose face is enrolled under another name is
    refused as a possible duplicate (enroll them with ``subjects add``, choosing)."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder")
    people = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not people:
        raise InvalidInput(f"{folder}: no sub-folders (one per person, named after them)")
    enrolled = {_folded(s.name): s.id for s in list_subjects(app)}
    return [
        Imported(p.name, enrolled[_folded(p.name)], 0, 0, [], already_enrolled=True)
        if _folded(p.name) in enrolled
        else _import_person(app, p, largest_face, actor)
        for p in people
    ]


def _import_person(app: App, folder: Path, largest_face: bool, actor: str) -> Imported:
    refs, refused = [], []
    for photo in sorted(p for p in folder.iterdir() if not p.name.startswith(".")):
        try:
            data = read_file(MediaRef(str(photo), raw_path=os.fsencode(photo)), app.settings.media.max_bytes)
            refs.append(registry.reference_from_photo(data, photo.name, app.face_engine(), app.settings, largest_face))
        except LikenessError as exc:
            refused.append(str(exc))
    if not refs:
        return Imported(folder.name, None, 0, 0, refused)
    try:
        with app.store.transaction() as session:
            _refuse_duplicate(session, app, folder.name, refs, app.face_engine().model)
            subject_id = registry.create_subject(
                session, app.store.box, folder.name, refs, app.face_engine(), app.settings, actor=actor
            )
            found = _search_catalogue(session, subject_id, app, actor)
    except PossibleDuplicate as exc:
        return Imported(folder.name, None, 0, 0, [*refused, str(exc)])
    return Imported(folder.name, subject_id, len(refs), found, refused)


def _search_catalogue(session: Session, subject_id: int, app: App, actor: str) -> int:
    from likeness.match import faces as face_match  # with the matching stack: only where someone is enrolled

    return face_match.search_catalogue(session, subject_id, app.settings.faces, actor=actor)


def list_subjects(app: App, *, only: set[int] | None = None) -> list[SubjectInfo]:
    with app.store.transaction() as session:
        return registry.list_subjects(session, app.store.box, only)


def get_subject(app: App, subject_id: int) -> SubjectInfo:
    found = list_subjects(app, only={subject_id})
    if not found:
        raise NotFound(f"no subject {subject_id}")
    return found[0]


def set_allowed_domains(app: App, subject_id: int, domains: list[str], *, actor: str) -> SubjectInfo:
    """Replace the domains where the subject's face is used with consent. A domain taken away re-searches the
    catalogue for the subject: media seen only there were left unmatched, and now must be."""
    with app.store.transaction() as session:
        removed = registry.set_domains(session, app.store.box, subject_id, domains, actor=actor)
        if removed:
            _search_catalogue(session, subject_id, app, actor)
    return get_subject(app, subject_id)


def withdraw(app: App, subject_id: int, *, actor: str) -> dict[str, int]:
    with app.store.transaction() as session:
        counts = registry.withdraw_subject(session, subject_id, actor=actor)
    with app.store.transaction() as session:
        keys.erase_withdrawn(session)
    return counts
