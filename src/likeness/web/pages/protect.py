"""Protecting an image without an account, StopNCII's way: the page hashes the picture in the browser (our PDQ
module, static/pdq.js) and sends only the hash; the hash goes into the ``web.protect_bank`` bank under a
submission of its own, a case is opened for it, and the page shows the case number and PIN (once: only the PIN's
hash is kept). With the two, the person can check the case or withdraw it, and its hash with it.

The answer never says whether the picture was seen already: that would let anyone holding an image learn whether
it is in the catalogue."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from likeness.api.deps import AppDep, admit
from likeness.cases.ncii import KINDS
from likeness.errors import InvalidInput
from likeness.services import cases, hashes
from likeness.web.pages.auth import _form, pre_session_post
from likeness.web.render import page

router = APIRouter(prefix="/protect")
ACTOR = "web:protect"
DESCRIPTION = "An image protected by its PDQ hash, computed in the person's browser (the image was never sent)."


class ProtectIn(BaseModel):
    pdq: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    quality: int = Field(ge=0, le=100)
    kind: str = Field(default="intimate_image", max_length=32)
    email: str = Field(default="", max_length=320)


@router.get("")
def protect_form(request: Request, app: AppDep) -> Response:
    return _form(request, app, "protect.html", kinds=KINDS)


@router.post("")
def protect(
    request: Request,
    app: AppDep,
    body: ProtectIn,
    form_token: Annotated[str, Header(alias="x-form-token", max_length=100)] = "",
) -> JSONResponse:
    pre_session_post(request, form_token)
    admit(request, app, None)  # anyone may protect: each address spends from its own bucket
    bank, submission = app.settings.web.protect_bank, f"web-{secrets.token_hex(8)}"
    hashes.require_bank(app, bank, create=True, actor=ACTOR)
    added = hashes.add_hashes(app, bank, [hashes.HashIn(body.pdq, body.quality)], actor=ACTOR, submission=submission)[0]
    if added.hash_id is None:
        raise InvalidInput(added.error or "the hash was not stored")
    contact = {"email": body.email.strip()} if body.email.strip() else {}
    made = cases.report(app, kind=body.kind, description=DESCRIPTION, contact=contact, hash_ids=[added.hash_id],
                        submission=submission, actor=ACTOR)  # fmt: skip
    return JSONResponse({"case": made.number, "pin": made.pin, "pdq": added.pdq_hex, "quality": added.quality})


@router.get("/case")
def case_form(request: Request, app: AppDep) -> Response:
    return _form(request, app, "protect_case.html")


@router.post("/case")
def case(
    request: Request,
    app: AppDep,
    number: Annotated[str, Form(max_length=32)],
    pin: Annotated[str, Form(max_length=32)],
    form_token: Annotated[str, Form()] = "",
    withdraw: Annotated[bool, Form()] = False,
) -> Response:
    """The case's status for whoever holds its number and PIN; with ``withdraw``, the case and its hashes are
    withdrawn for good."""
    pre_session_post(request, form_token)
    admit(request, app, None)
    found = cases.withdraw(app, number, pin, actor=ACTOR) if withdraw else cases.status(app, number, pin)
    return page(request, "protect_case.html", status=found, form_token=form_token, number=found.number)
