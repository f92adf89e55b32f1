"""``create_site``: the API's app with the pages, their static files, security headers and HTML error pages.

Errors on a page are pages (the API's routes keep answering problem details): a missing login is a redirect to
/login, anything else the error's status with its message (never a trace)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from likeness.api import problems
from likeness.api.app import create_app
from likeness.errors import LikenessError, LoginNeeded
from likeness.log import get_logger
from likeness.services.app import App
from likeness.web import security
from likeness.web.pages import auth, overview, portal, protect, review
from likeness.web.render import HERE, page

log = get_logger(__name__)
_API = ("/v1", "/health", "/openapi.json", "/docs", "/redoc")
Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def create_site(app: App | None = None) -> FastAPI:
    site = create_app(app)
    for router in (auth.router, review.router, overview.router, portal.router, protect.router):
        site.include_router(router, include_in_schema=False)
    site.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    site.add_middleware(security.SecurityHeaders)
    for error in (LikenessError, RequestValidationError, HTTPException):
        site.add_exception_handler(error, _as_page(site.exception_handlers[error]))
    return site


def _as_page(api_handler: Handler) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        wants_json = request.headers.get("content-type", "").startswith("application/json")
        if request.url.path.startswith(_API) or wants_json:  # a page's script posting JSON reads problem details
            answer = api_handler(request, exc)
            return await answer if inspect.isawaitable(answer) else answer
        if isinstance(exc, LoginNeeded):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        status, message = _described(exc)
        return page(request, "error.html", status_code=status, status=status, message=message)

    return handle


def _described(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, LikenessError):
        status = problems.status_of(exc)
        if status < 500:
            return status, str(exc)
        log.error("page.failed", kind=exc.kind, error=str(exc))
        return status, "something went wrong on our side; it was logged"
    if isinstance(exc, RequestValidationError):
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "request" for e in exc.errors())
        return 422, f"please check: {fields}"
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    return 500, "something went wrong on our side"
