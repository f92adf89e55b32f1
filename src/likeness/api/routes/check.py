"""POST /v1/check (a picture) and /v1/batch (a GIF, animation or video): analysed, matched, never stored."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile

from likeness.accounts import Principal
from likeness.api import schemas
from likeness.api.deps import AppDep, Check, CheckerDep, shadowed
from likeness.api.uploads import hold, judged, observe, read_upload
from likeness.services import check
from likeness.services.app import App

router = APIRouter(tags=["check"])
Upload = Annotated[UploadFile, File(description="the picture or video; its type is read from its bytes")]


def scope_of(principal: Principal) -> check.CheckScope:
    """Subjects see their own face matches only and no bank; reviewers and admins see all."""
    return check.CheckScope(principal.visible_subjects(), principal.role != "subject")


def _checked(
    request: Request, app: App, checker: check.Checker, principal: Principal, file: UploadFile, video: bool | None
) -> check.Checked:
    data = read_upload(file, app)
    fmt = judged(request, app, lambda: check.sniff_upload(data, app.settings, video=video))
    if shadowed(request):
        hold(request, app, "check", {"sha256": check.held(data, fmt).sha256, "format": fmt, "bytes": len(data)})
        return check.held(data, fmt)
    result = judged(request, app, lambda: check.check(app, checker, data, scope_of(principal)))
    observe(request, app, data, bytes.fromhex(result.pdq) if result.pdq else None, result.probes)
    return result


@router.post("/check", response_model=schemas.Checked, summary="Check a picture")
def check_picture(request: Request, app: AppDep, checker: CheckerDep, principal: Check, file: Upload) -> check.Checked:
    """Faces, NSFW score, provenance and hashes of a picture, with the matches the caller may see: its own
    subject's (subject accounts) or every subject's and bank's (reviewers, admins). The picture is not kept."""
    return _checked(request, app, checker, principal, file, video=False)


@router.post("/batch", response_model=schemas.Batch, summary="Check a GIF, animation or video")
def check_batch(request: Request, app: AppDep, checker: CheckerDep, principal: Check, file: Upload) -> schemas.Batch:
    """Sampled frames (first, last, one a second, near-duplicates skipped), faces and matches per frame, and the
    aggregate risk: highest NSFW score, faces, matches."""
    result = _checked(request, app, checker, principal, file, video=None)
    risk = check.risk(result, app.settings)
    return schemas.Batch(check=schemas.Checked.model_validate(result), risk=schemas.Risk.model_validate(risk))
