"""Reading uploads and telling the abuse controls what callers sent.

The body was capped before it was read (limits.py); an uploaded file is spooled by Starlette to an anonymous
temporary file (unlinked on creation, gone when closed at the end of the request) and read here into memory once.
Pictures are never written anywhere else: only their hashes and embeddings outlive the request."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request, UploadFile

from likeness import abuse
from likeness.api.deps import caller_of
from likeness.errors import AnalysisFailed, Conflict, InvalidInput, MediaError, TooLarge
from likeness.services.app import App

T = TypeVar("T")


def read_upload(file: UploadFile, app: App) -> bytes:
    cap = min(app.settings.api.max_upload_bytes, app.settings.media.max_bytes)
    data = file.file.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(f"the upload is over the {cap} byte limit")
    return data


def judged(request: Request, app: App, step: Callable[[], T]) -> T:
    """Run ``step``; a refused input (bad image, invalid request, duplicate) lowers the caller's trust."""
    try:
        return step()
    except (MediaError, AnalysisFailed, InvalidInput, Conflict) as exc:
        reason = "duplicate" if isinstance(exc, Conflict) else "invalid_image"
        with app.store.transaction() as session:
            abuse.rejected(session, _caller(request, app), reason, settings=app.settings.abuse)
        raise


def observe(request: Request, app: App, data: bytes, pdq: bytes | None, probes: list[tuple[str, bytes]]) -> None:
    caller = _caller(request, app)
    with app.store.transaction() as session:
        abuse.observe_upload(session, caller, hashlib.sha256(data).hexdigest(), pdq, settings=app.settings.abuse)
        for kind in sorted({kind for kind, _ in probes}):  # one call per kind (face, hash), not one per key
            keys = [key for k, key in probes if k == kind]
            abuse.observe_probes(session, caller, kind, keys, settings=app.settings.abuse)


def probed(request: Request, app: App, kind: str, keys: list[bytes]) -> None:
    """One call for the whole request: a lookup of a thousand hashes is three statements per caller key."""
    with app.store.transaction() as session:
        abuse.observe_probes(session, _caller(request, app), kind, keys, settings=app.settings.abuse)


def hold(request: Request, app: App, what: str, detail: dict[str, object]) -> int:
    with app.store.transaction() as session:
        return abuse.shadow_hold(session, _caller(request, app), what, detail)


def _caller(request: Request, app: App) -> abuse.Caller:
    return getattr(request.state, "caller", None) or caller_of(request, app, None)
