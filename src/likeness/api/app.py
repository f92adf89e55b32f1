"""The FastAPI app: ``create_app`` wires the services' App (``open_app``) to the routes, once per process.

Everything is under ``/v1`` and needs a bearer token with the route's scope, except ``/health``; the OpenAPI 3.1
document is at ``/openapi.json``, its page at ``/docs``. Errors are problem details (problems.py). Uploads are
analysed by the process's ``Checker`` workers, started on the first upload and stopped at shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from likeness import __version__
from likeness.api import problems
from likeness.api.jobs import Crawls
from likeness.api.limits import BodyLimit
from likeness.api.routes import check, hashes, health, matches, ops, subjects, tokens
from likeness.services.app import App, open_app
from likeness.services.check import Checker

_PROBLEM = {"content": {problems.MEDIA_TYPE: {"schema": problems.Problem.model_json_schema()}}}
_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a body that cannot be parsed (malformed multipart or JSON)", **_PROBLEM},
    401: {"description": "no token, or a wrong, expired or revoked one", **_PROBLEM},
    403: {"description": "the token lacks the scope", **_PROBLEM},
    404: {"description": "not found, or not the caller's to see", **_PROBLEM},
    409: {"description": "clashes with what is stored", **_PROBLEM},
    413: {"description": "the body is over its limit (refused before it is read)", **_PROBLEM},
    422: {"description": "the request is not valid", **_PROBLEM},
    429: {"description": "too many requests: see Retry-After", **_PROBLEM},
}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    415: {"description": "not a picture or video we analyse (read from its bytes)", **_PROBLEM},
}


def create_app(app: App | None = None) -> FastAPI:
    """``app``: the services' App to serve (a test's); without it one is opened from the settings and closed at
    shutdown."""
    owned = app is None
    likeness = app or open_app()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        yield
        api.state.checker.close()
        if owned:
            likeness.close()

    api = FastAPI(
        title="likeness",
        version=__version__,
        summary="Find misuse of consenting people's faces and protected images.",
        lifespan=lifespan,
        responses={500: {"description": "an unexpected error", **_PROBLEM}},
    )
    api.state.likeness = likeness
    api.state.checker = Checker(likeness.settings)
    api.state.crawls = Crawls()
    problems.install(api)
    api.add_middleware(BodyLimit, settings=likeness.settings.api)
    api.include_router(_v1())
    api.include_router(health.router)
    return api


def _v1() -> APIRouter:
    v1 = APIRouter(prefix="/v1", responses=_AUTH_ERRORS)
    v1.include_router(check.router, responses=_UPLOAD_ERRORS)
    v1.include_router(hashes.router)
    v1.include_router(subjects.router)
    v1.include_router(matches.router)
    v1.include_router(ops.router)
    v1.include_router(tokens.router)
    v1.include_router(health.metrics_router)
    return v1
