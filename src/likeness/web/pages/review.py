"""The reviewer's pages: the match queue with filters, a match (reference face beside the face found, every
sighting, the decision by keyboard, its evidence and takedowns), a media with its frames, a frozen capture.

Pictures are answered as JPEGs from their own URLs, never cached: the face found is blurred by the server when it
is sensitive (a hash match, or NSFW over ``nsfw.blur_above``) until the reviewer asks for it in clear (``clear=1``),
so a picture nobody chose to see never reaches the browser."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from likeness.api.deps import AppDep, Id
from likeness.cases import review as states
from likeness.cases.notices import KINDS as NOTICE_KINDS
from likeness.cases.report import sensitive
from likeness.errors import NotFound
from likeness.services import evidence, notices, review
from likeness.services.app import App
from likeness.web.render import page
from likeness.web.sessions import Reviewer, ReviewerPicture, ReviewerPost

router = APIRouter(prefix="/review")
Status = Literal[
    "new", "on_hold", "released", "confirmed", "rejected", "false_positive", "actioned", "removed", "still_up", "all"
]
Kind = Literal["face", "hash"]
Tier = Literal["high", "medium", "low"]
_EVIDENCE_FILES = ("screenshot.png", "crop.png")


def jpeg(data: bytes) -> Response:
    return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})


@router.get("")
def queue(
    request: Request,
    app: AppDep,
    viewer: Reviewer,
    status: Status = "new",
    kind: Kind | None = None,
    tier: Tier | None = None,
    requested: bool | None = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    size = app.settings.web.page_size
    found = review.list_matches(app, status=None if status == "all" else status, kind=kind, tier=tier,
                                takedown_requested=requested, limit=size + 1, offset=offset)  # fmt: skip
    filters = {"status": status, "kind": kind, "tier": tier, "requested": requested}
    return page(request, "review_queue.html", viewer, matches=found[:size], more=len(found) > size, offset=offset,
                size=size, filters=filters, statuses=(*states.STATUSES, "all"),
                blurred=_blurred(app, found))  # fmt: skip


def _blurred(app: App, matches: list[review.MatchRecord]) -> set[int]:
    return {m.id for m in matches if sensitive(m, app.settings)}


@router.get("/matches/{match_id}")
def match(request: Request, match_id: Id, app: AppDep, viewer: Reviewer) -> Response:
    found = review.get_match(app, match_id)
    previous, following = review.neighbours(app, match_id, found.status)
    return page(
        request,
        "review_match.html",
        viewer,
        m=found,
        moves=states.allowed(found.status),
        sensitive=sensitive(found, app.settings),
        on_the_web=review.on_the_web(found),
        case=evidence.of_match(app, match_id),
        notices=notices.list_notices(app, match_id=match_id),
        notice_kinds=NOTICE_KINDS,
        previous=previous,
        next=following,
    )


@router.post("/matches/{match_id}")
def decide(
    match_id: Id,
    app: AppDep,
    viewer: ReviewerPost,
    status: Annotated[str, Form(max_length=32)],
    note: Annotated[str, Form(max_length=4000)] = "",
    then: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
) -> Response:
    """The decision, then the next match of the queue (``then``) or this one again."""
    review.set_status(app, match_id, status, actor=viewer.principal.actor, note=note.strip() or None)
    target = f"/review/matches/{then}" if then else f"/review/matches/{match_id}"
    return RedirectResponse(target, status_code=303)


@router.get("/matches/{match_id}/found.jpg")
def found_picture(match_id: Id, app: AppDep, viewer: ReviewerPicture, clear: bool = False) -> Response:
    data, why = review.found_crop(app, match_id, clear=clear)
    if data is None:
        raise NotFound(why)
    return jpeg(data)


@router.get("/subjects/{subject_id}/reference.jpg")
def reference_picture(subject_id: Id, app: AppDep, viewer: ReviewerPicture) -> Response:
    data = review.reference_crop(app, subject_id)
    if data is None:
        raise NotFound("no reference crop kept for this subject")
    return jpeg(data)


@router.post("/matches/{match_id}/evidence")
def freeze(match_id: Id, app: AppDep, viewer: ReviewerPost) -> Response:
    """Freeze what the match's page shows now (seconds: a real browser loads it)."""
    evidence.capture(app, match_id, actor=viewer.principal.actor)
    return RedirectResponse(f"/review/matches/{match_id}#evidence", status_code=303)


@router.post("/matches/{match_id}/notices")
def draft_notice(
    request: Request,
    match_id: Id,
    app: AppDep,
    viewer: ReviewerPost,
    kind: Annotated[str, Form(max_length=32)],
) -> Response:
    made = notices.draft(app, match_id, kind, actor=viewer.principal.actor)
    return page(request, "notice.html", viewer, draft=made, m=review.get_match(app, match_id))


@router.get("/media/{media_id}")
def media(request: Request, media_id: Id, app: AppDep, viewer: Reviewer) -> Response:
    found = review.get_media(app, media_id)
    frames: dict[int, list[review.MatchRecord]] = {}
    for m in found.matches:
        frames.setdefault(m.frame, []).append(m)
    return page(request, "media.html", viewer, media=found, frames=sorted(frames.items()),
                blurred=_blurred(app, found.matches))  # fmt: skip


@router.get("/evidence/{capture_id}")
def capture(request: Request, capture_id: Id, app: AppDep, viewer: Reviewer) -> Response:
    info = json.loads(evidence.capture_file(app, capture_id, "capture.json"))
    matched = json.loads(evidence.capture_file(app, capture_id, "match.json"))
    return page(request, "evidence.html", viewer, capture=evidence.get_capture(app, capture_id), info=info,
                matched=matched)  # fmt: skip


@router.get("/evidence/{capture_id}/{name}")
def capture_picture(capture_id: Id, name: str, app: AppDep, viewer: ReviewerPicture) -> Response:
    if name not in _EVIDENCE_FILES:
        raise NotFound(f"no {name} here")
    data = evidence.capture_file(app, capture_id, name)
    return Response(data, media_type="image/png", headers={"cache-control": "no-store"})
