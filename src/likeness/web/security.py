"""What every page answer carries, and what every form post must show.

Headers: a strict Content-Security-Policy (scripts, styles and images from this origin only, no inline script or
style, no framing, forms posted here only), no MIME sniffing, no referrer to other sites (a reviewer opening a
platform's page must not tell it where they came from; same-origin, as Chromium sends ``Origin: null`` on the
form posts of a no-referrer page, which would blind the Origin check), and no caching of pages or pictures (they
show faces and names). The API's /docs page loads Swagger UI from a CDN, so it alone is left without the policy.

CSRF: the session cookie is SameSite=Strict, and each form carries a token besides: an HMAC of the session's own
secret, so it needs no storage and dies with the session. Before login (the login and protect forms) a random
token is set in a cookie and must come back in the form (double submit). A post whose Origin is another site's is
refused whatever it carries."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from likeness.errors import Forbidden

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
_UNGUARDED = ("/docs", "/redoc")  # Swagger UI and ReDoc load their scripts from a CDN
PRE_SESSION_COOKIE = "likeness_csrf"


class SecurityHeaders:
    """Pure ASGI (no per-request task, unlike BaseHTTPMiddleware): adds ``HEADERS`` to every answer, and
    ``no-store`` to those that set no caching of their own (static files do)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_UNGUARDED):
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = dict(HEADERS)
                if https:
                    extra["strict-transport-security"] = "max-age=31536000"
                if b"cache-control" not in present:
                    extra["cache-control"] = "no-store"
                headers += [(k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def session_csrf(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"likeness web csrf", hashlib.sha256).hexdigest()


def new_pre_session_token() -> str:
    return secrets.token_urlsafe(32)


def check_origin(request: Request) -> None:
    """A browser sends Origin with every POST: one naming another site is a cross-site request."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("this form was posted from another site")


def check_token(expected: str | None, given: str | None) -> None:
    if not expected or not given or not hmac.compare_digest(expected, given):
        raise Forbidden("the form's security token is missing or stale: reload the page and try again")
