"""A subject's own pages: enroll (reference photos, the consent text agreed to and recorded), their matches and
nothing else, a takedown asked for, withdrawal.

What the account sees is its own subject's face matches only: every match is looked up through the same filter
the API uses (``Principal.visible_subjects``), and another's reads as not found. The face found is shown blurred
when sensitive, and in clear when they ask: it is their own face."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from likeness import accounts
from likeness.api.deps import AppDep, Id
from likeness.api.uploads import read_upload
from likeness.cases.report import sensitive
from likeness.errors import Conflict, EnrollmentError, InvalidInput, NotFound
from likeness.registry.consent import consent
from likeness.services import review, subjects
from likeness.services.app import App
from likeness.web import sessions
from likeness.web.pages.review import jpeg
from likeness.web.render import page
from likeness.web.sessions import Subject, SubjectPicture, SubjectPost, Viewer

router = APIRouter(prefix="/me")


def _own(app: App, viewer: Viewer, match_id: int) -> review.MatchRecord:
    allowed = viewer.principal.visible_subjects() or set()
    found = review.get_match(app, match_id)
    if found.kind != "face" or found.subject_id not in allowed:
        raise NotFound(f"no match {match_id}")
    return found


@router.get("")
def home(request: Request, app: AppDep, viewer: Subject) -> Response:
    subject_id = viewer.principal.subject_id
    if subject_id is None:
        return RedirectResponse("/me/enroll", status_code=303)
    found = review.list_matches(app, subjects={subject_id}, limit=None)
    return page(request, "portal_home.html", viewer, me=subjects.get_subject(app, subject_id), matches=found,
                blurred={m.id for m in found if sensitive(m, app.settings)})  # fmt: skip


@router.get("/enroll")
def enroll_form(request: Request, app: AppDep, viewer: Subject) -> Response:
    if viewer.principal.subject_id is not None:
        return RedirectResponse("/me", status_code=303)
    return page(request, "portal_enroll.html", viewer, consent=consent(app.settings.web.consent_version))


@router.post("/enroll")
def enroll(
    request: Request,
    app: AppDep,
    viewer: SubjectPost,
    name: Annotated[str, Form(min_length=1, max_length=200)],
    photos: Annotated[list[UploadFile], File()],
    consent_sha256: Annotated[str, Form(max_length=64)] = "",
    agree: Annotated[bool, Form()] = False,
) -> Response:
    """One subject, once: the photos are analysed, the consent recorded and the account bound in one transaction,
    then the catalogue searched. Nothing says whether the face is enrolled already (that would let anyone test
    whether someone is): a second enrolment of a face is a new subject, for reviewers to merge."""
    principal = viewer.principal
    if principal.subject_id is not None:
        raise Conflict("this account has enrolled already")
    shown = consent(app.settings.web.consent_version)
    if not agree or consent_sha256 != shown.sha256:
        raise InvalidInput("tick the box to agree to the consent text shown (it may have changed: reload the page)")
    if not 1 <= len(photos) <= app.settings.api.max_photos:
        raise EnrollmentError(f"send 1 to {app.settings.api.max_photos} photos")
    found = [subjects.Photo(f.filename or f"photo {n + 1}", read_upload(f, app)) for n, f in enumerate(photos)]

    def bind(session: Session, subject_id: int) -> None:
        accounts.enrolled_self(session, principal.account_id, subject_id, shown, consent_sha256, actor=principal.actor)

    subjects.enroll(app, name, found, actor=principal.actor, force_new=True, on_created=bind)
    return RedirectResponse("/me", status_code=303)


@router.get("/matches/{match_id}")
def match(request: Request, match_id: Id, app: AppDep, viewer: Subject) -> Response:
    found = _own(app, viewer, match_id)
    return page(request, "portal_match.html", viewer, m=found, sensitive=sensitive(found, app.settings))


@router.get("/matches/{match_id}/found.jpg")
def found_picture(match_id: Id, app: AppDep, viewer: SubjectPicture, clear: bool = False) -> Response:
    _own(app, viewer, match_id)
    data, why = review.found_crop(app, match_id, clear=clear)
    if data is None:
        raise NotFound(why)
    return jpeg(data)


@router.get("/reference.jpg")
def reference_picture(app: AppDep, viewer: SubjectPicture) -> Response:
    data = review.reference_crop(app, viewer.principal.subject_id) if viewer.principal.subject_id else None
    if data is None:
        raise NotFound("no reference crop kept")
    return jpeg(data)


@router.post("/matches/{match_id}/takedown")
def ask_takedown(match_id: Id, app: AppDep, viewer: SubjectPost) -> Response:
    _own(app, viewer, match_id)
    review.request_takedown(app, match_id, actor=viewer.principal.actor)
    return RedirectResponse(f"/me/matches/{match_id}", status_code=303)


@router.get("/withdraw")
def withdraw_form(request: Request, viewer: Subject) -> Response:
    return page(request, "portal_withdraw.html", viewer)


@router.post("/withdraw")
def withdraw(
    request: Request, app: AppDep, viewer: SubjectPost, confirm: Annotated[str, Form(max_length=32)] = ""
) -> Response:
    """Everything derived from the photos is destroyed (crypto-shredded), the account disabled, the session gone."""
    subject_id = viewer.principal.subject_id
    if confirm.strip().upper() != "WITHDRAW":
        raise InvalidInput("type WITHDRAW to confirm")
    counts = subjects.withdraw(app, subject_id, actor=viewer.principal.actor) if subject_id is not None else {}
    if subject_id is None:
        with app.store.transaction() as session:
            accounts.disable_user(session, viewer.principal.account_id, actor=viewer.principal.actor)
    response = page(request, "portal_withdrawn.html", None, counts=counts)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response
