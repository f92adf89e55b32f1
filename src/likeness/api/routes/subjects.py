"""Subjects: enroll from uploaded photos (admins), list and read, add references, withdraw.

A subject account sees and changes only its own subject; another subject reads as not found (never "forbidden",
which would say it exists)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile

from likeness.accounts import Principal
from likeness.api import schemas
from likeness.api.deps import AppDep, Id, SubjectsEnroll, SubjectsRead, SubjectsWrite, shadowed
from likeness.api.uploads import hold, judged, observe, read_upload
from likeness.errors import InvalidInput, NotFound
from likeness.services import subjects
from likeness.services.app import App

router = APIRouter(prefix="/subjects", tags=["subjects"])
Photos = Annotated[list[UploadFile], File(description="reference photos, one face each")]


def visible(principal: Principal, subject_id: int) -> None:
    allowed = principal.visible_subjects()
    if allowed is not None and subject_id not in allowed:
        raise NotFound(f"no subject {subject_id}")


def _photos(request: Request, app: App, files: list[UploadFile]) -> list[subjects.Photo]:
    if not 1 <= len(files) <= app.settings.api.max_photos:
        raise InvalidInput(f"send 1 to {app.settings.api.max_photos} photos")
    photos = [subjects.Photo(f.filename or f"photo {n + 1}", read_upload(f, app)) for n, f in enumerate(files)]
    for photo in photos:
        observe(request, app, photo.data, None, [])
    return photos


@router.get("", response_model=list[schemas.Subject])
def list_subjects(app: AppDep, principal: SubjectsRead) -> list[subjects.SubjectInfo]:
    return subjects.list_subjects(app, only=principal.visible_subjects())


@router.get("/{subject_id}", response_model=schemas.Subject)
def get_subject(subject_id: Id, app: AppDep, principal: SubjectsRead) -> subjects.SubjectInfo:
    visible(principal, subject_id)
    return subjects.get_subject(app, subject_id)


@router.post("", response_model=schemas.Enrolled, status_code=201)
def enroll(
    request: Request,
    app: AppDep,
    principal: SubjectsEnroll,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    photos: Photos,
    largest_face: Annotated[bool, Form()] = False,
    force_new: Annotated[bool, Form(description="enroll even if the name or a face matches a subject")] = False,
    allowed_domains: Annotated[list[str] | None, Form()] = None,
) -> subjects.Enrolled:
    """A new subject; the catalogue is searched for them at once. 409 (with ``candidates``) when the name or a
    face matches an existing subject: add references to it instead, or send ``force_new``."""
    found = _photos(request, app, photos)
    if shadowed(request):
        hold(request, app, "enroll", {"photos": len(found)})
        return subjects.Enrolled(0, len(found), 0)
    return judged(
        request,
        app,
        lambda: subjects.enroll(
            app,
            name,
            found,
            actor=principal.actor,
            largest_face=largest_face,
            allowed_domains=allowed_domains,
            force_new=force_new,
        ),
    )


@router.post("/{subject_id}/references", response_model=schemas.Enrolled, status_code=201)
def add_references(
    subject_id: Id,
    request: Request,
    app: AppDep,
    principal: SubjectsWrite,
    photos: Photos,
    largest_face: Annotated[bool, Form()] = False,
) -> subjects.Enrolled:
    visible(principal, subject_id)
    subjects.get_subject(app, subject_id)  # NotFound before any photo is analysed
    found = _photos(request, app, photos)
    if shadowed(request):
        hold(request, app, "references", {"subject_id": subject_id, "photos": len(found)})
        return subjects.Enrolled(subject_id, len(found), 0, added_to_existing=True)
    return judged(
        request,
        app,
        lambda: subjects.enroll(app, "", found, actor=principal.actor, largest_face=largest_face, add_to=subject_id),
    )


@router.delete("/{subject_id}", response_model=schemas.Withdrawn)
def withdraw(subject_id: Id, app: AppDep, principal: SubjectsWrite) -> schemas.Withdrawn:
    """Withdraw consent: the subject's embeddings, hashes and matches are destroyed everywhere (crypto-shredded);
    a subject account bound to it stops working."""
    visible(principal, subject_id)
    subjects.get_subject(app, subject_id)
    return schemas.Withdrawn(withdrawn=subjects.withdraw(app, subject_id, actor=principal.actor))
