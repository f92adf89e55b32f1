"""Errors as RFC 9457 problem details, mapped once from the error tree's kinds (errors.py).

Every error answer is ``application/problem+json``: ``type`` (``about:blank``: the status says it all), ``title``
(the status phrase), ``status``, ``detail`` (the error's message, for people) and ``kind`` (the stable kind of the
error tree, for programs). A 429 says when to come back (Retry-After), a 401 how to authenticate
(WWW-Authenticate). Errors outside the tree answer 500 without their message: it may name internals."""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from likeness import errors

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/problem+json"

# Most specific first: the first class an error is an instance of gives its status.
STATUS: list[tuple[type[errors.LikenessError], int]] = [
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.TooLarge, 413),
    (errors.UnsupportedFormat, 415),
    (errors.MediaError, 422),  # empty, corrupt, too many frames, too costly to analyse
    (errors.AnalysisFailed, 422),  # an analyser failed on these pixels: the file, not the service
    (errors.InvalidInput, 422),
    (errors.EmbeddedServerFailed, 503),
    (errors.ConfigurationError, 500),
]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    kind: str
    errors: list[dict[str, Any]] | None = None  # 422 from request validation: what was wrong, where
    candidates: list[int] | None = None  # 409 on enrollment: the subjects the new one may be
    retry_after: int | None = None  # 429: seconds


def status_of(exc: errors.LikenessError) -> int:
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def problem(status: int, kind: str, detail: str | None, **extra: Any) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, kind=kind, **extra)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="likeness"'
    if body.retry_after is not None:
        headers["Retry-After"] = str(body.retry_after)
    return JSONResponse(body.model_dump(exclude_none=True), status, headers, media_type=MEDIA_TYPE)


def from_error(exc: errors.LikenessError) -> JSONResponse:
    status = status_of(exc)
    if status >= 500:
        log.error("request failed: %s: %s", exc.kind, exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.RateLimited):
        extra["retry_after"] = max(1, math.ceil(exc.retry_after or 1))
    candidates = getattr(exc, "candidates", None)
    if candidates is not None:
        extra["candidates"] = [int(c) for c in candidates]
    return problem(status, exc.kind, str(exc) or None, **extra)


def install(api: FastAPI) -> None:
    api.add_exception_handler(errors.LikenessError, _likeness)  # type: ignore[arg-type]
    api.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    api.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    api.add_exception_handler(Exception, _unexpected)


async def _likeness(request: Request, exc: errors.LikenessError) -> JSONResponse:
    return from_error(exc)


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    found = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    return problem(422, errors.InvalidInput.kind, "the request is not valid", errors=found)


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    kinds = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    return problem(exc.status_code, kinds.get(exc.status_code, "http"), str(exc.detail) if exc.detail else None)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem(500, "internal", "an unexpected error; the server log has the details")
