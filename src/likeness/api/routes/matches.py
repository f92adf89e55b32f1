"""Matches (filter, paginate, review with a note) and media (with every place they were seen).

A subject account sees only its own subject's face matches, and only media showing its subject; anything else
reads as not found."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from likeness.accounts import Principal
from likeness.api import schemas
from likeness.api.deps import AppDep, Id, MatchesRead, MatchesReview
from likeness.errors import NotFound
from likeness.services import review

router = APIRouter(tags=["matches"])
Status = Literal[
    "new", "on_hold", "released", "confirmed", "rejected", "false_positive", "actioned", "removed", "still_up"
]


def _mine(principal: Principal, match: review.MatchRecord) -> bool:
    allowed = principal.visible_subjects()
    return allowed is None or (match.kind == "face" and match.subject_id in allowed)


@router.get("/matches", response_model=schemas.Matches)
def list_matches(
    app: AppDep,
    principal: MatchesRead,
    status: Status | None = None,
    kind: Literal["face", "hash"] | None = None,
    media_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.Matches:
    found = review.list_matches(
        app,
        status=status,
        subjects=principal.visible_subjects(),
        kind=kind,
        media_id=media_id,
        limit=limit,
        offset=offset,
    )
    items = [schemas.Match.model_validate(m) for m in found if _mine(principal, m)]
    return schemas.Matches(items=items, limit=limit, offset=offset)


@router.get("/matches/{match_id}", response_model=schemas.Match)
def get_match(match_id: Id, app: AppDep, principal: MatchesRead) -> review.MatchRecord:
    match = review.get_match(app, match_id)
    if not _mine(principal, match):
        raise NotFound(f"no match {match_id}")
    return match


@router.post("/matches/{match_id}/review", response_model=schemas.Match)
def review_match(match_id: Id, body: schemas.ReviewIn, app: AppDep, principal: MatchesReview) -> review.MatchRecord:
    """Set the review status, with an optional note (sealed with the match's owner's key)."""
    review.get_match(app, match_id)  # NotFound
    return review.set_status(app, match_id, body.status, actor=principal.actor, note=body.note)


@router.get("/media/{media_id}", response_model=schemas.Media)
def get_media(media_id: Id, app: AppDep, principal: MatchesRead) -> schemas.Media:
    media = review.get_media(app, media_id)
    mine = [m for m in media.matches if _mine(principal, m)]
    if principal.visible_subjects() is not None and not mine:
        raise NotFound(f"no media {media_id}")
    shaped = schemas.Media.model_validate(media)
    return shaped.model_copy(update={"matches": [schemas.Match.model_validate(m) for m in mine]})
