"""Logging in with the API's accounts: a session is an API token of the account's role (``web session``), its
digest kept like any token's, in an HttpOnly, SameSite=Strict cookie. So a session is listed and revoked with the
account's other tokens, dies when the account is disabled or its subject withdrawn, and every page request is
admitted by the abuse controls exactly as an API request with that token is (``api.deps.admit``); a wrong
password lowers the IP's trust as a wrong token does.

``Viewer``: the principal of the request's session, and the form token its pages must post back. Pages needing a
login send the browser to /login (``LoginNeeded``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Request, Response

from likeness import accounts
from likeness.accounts import Principal
from likeness.api.deps import AppDep, admit, refuse_credentials
from likeness.errors import Forbidden, LoginNeeded, Unauthenticated
from likeness.services.app import App
from likeness.web import security

COOKIE = "likeness_session"
LABEL = "web session"


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    csrf: str

    @property
    def reviewer(self) -> bool:
        return "matches:review" in self.principal.scopes

    @property
    def subject(self) -> bool:
        return self.principal.role == "subject"


def login(request: Request, app: App, username: str, password: str) -> str:
    """A new session token for the account whose password this is (Unauthenticated otherwise, the IP's trust
    lowered and its bucket spent)."""
    try:
        with app.store.transaction() as session:
            account = accounts.verify_password(session, username, password)
            principal = accounts.principal_of(session, account.id)
    except Unauthenticated:
        refuse_credentials(request, app)
        raise
    admit(request, app, principal)
    with app.store.transaction() as session:
        made = accounts.create_token(
            session, account.id, actor=principal.actor, label=LABEL, days=app.settings.web.session_hours / 24
        )
    return made.token


def set_cookie(response: Response, request: Request, app: App, token: str) -> None:
    secure = app.settings.web.cookie_secure
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(app.settings.web.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" if secure is None else secure,
        path="/",
    )


def logout(request: Request, app: App) -> None:
    """The session's token is revoked: the cookie alone, if kept, no longer opens anything."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return
    try:
        with app.store.transaction() as session:
            principal = accounts.authenticate_token(session, raw)
            if principal.token_id is not None:
                accounts.revoke_token(session, principal.token_id, actor=principal.actor)
    except Unauthenticated:
        return  # already ended


def viewer(request: Request, app: AppDep) -> Viewer:
    return _session(request, app, cost=1.0)


def picture_viewer(request: Request, app: AppDep) -> Viewer:
    """A picture shown in a page: admitted at ``web.picture_cost``, so that a queue of 50 thumbnails does not spend
    a token's whole burst (abuse.token_burst) and leave the last of them refused."""
    return _session(request, app, cost=app.settings.web.picture_cost)


def _session(request: Request, app: App, cost: float) -> Viewer:
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise LoginNeeded("log in first")
    try:
        with app.store.transaction() as session:
            principal = accounts.authenticate_token(session, raw, touch_every_s=app.settings.api.last_used_every_s)
    except Unauthenticated:
        refuse_credentials(request, app)
        raise LoginNeeded("your session ended: log in again") from None
    admit(request, app, principal, cost=cost)
    return Viewer(principal, security.session_csrf(raw))


def reviewer(found: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    if not found.reviewer:
        raise Forbidden("this page is for reviewers")
    return found


def subject(found: Annotated[Viewer, Depends(viewer)]) -> Viewer:
    if not found.subject:
        raise Forbidden("this page is for a subject's own account")
    return found


def posted(request: Request, found: Annotated[Viewer, Depends(viewer)], csrf: Annotated[str, Form()] = "") -> Viewer:
    """A form post by the session: from this site, with the session's form token."""
    security.check_origin(request)
    security.check_token(found.csrf, csrf)
    return found


def picture_reviewer(found: Annotated[Viewer, Depends(picture_viewer)]) -> Viewer:
    return reviewer(found)


def picture_subject(found: Annotated[Viewer, Depends(picture_viewer)]) -> Viewer:
    return subject(found)


AnyViewer = Annotated[Viewer, Depends(viewer)]
ReviewerPicture = Annotated[Viewer, Depends(picture_reviewer)]
SubjectPicture = Annotated[Viewer, Depends(picture_subject)]
Reviewer = Annotated[Viewer, Depends(reviewer)]
Subject = Annotated[Viewer, Depends(subject)]
Posted = Annotated[Viewer, Depends(posted)]


def posted_reviewer(found: Posted) -> Viewer:
    return reviewer(found)


def posted_subject(found: Posted) -> Viewer:
    return subject(found)


ReviewerPost = Annotated[Viewer, Depends(posted_reviewer)]
SubjectPost = Annotated[Viewer, Depends(posted_subject)]
