"""Login, logout, sign-up (when the operator allows it), and ``/``: each role's home."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from likeness import accounts
from likeness.api.deps import AppDep, admit
from likeness.errors import LikenessError, LoginNeeded, NotFound, Unauthenticated
from likeness.web import security, sessions
from likeness.web.render import page
from likeness.web.sessions import Posted

router = APIRouter()
ACTOR = "web:signup"


@router.get("/")
def home(request: Request, app: AppDep) -> Response:
    try:
        found = sessions.viewer(request, app)
    except LoginNeeded:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(_home_of(found), status_code=303)


def _home_of(found: sessions.Viewer) -> str:
    return "/me" if found.subject else "/review"


def _safe_next(target: str | None) -> str | None:
    """Only a path of this site: ``//evil.example`` or ``https://...`` would send a fresh login elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return None


@router.get("/login")
def login_form(request: Request, app: AppDep, next: str | None = None) -> Response:
    return _form(request, app, "login.html", next=_safe_next(next))


def _form(request: Request, app: AppDep, template: str, status_code: int = 200, **context: Any) -> Response:
    """A form shown before any session, with its double-submit token (security.py)."""
    token = request.cookies.get(security.PRE_SESSION_COOKIE) or security.new_pre_session_token()
    response = page(request, template, status_code=status_code, form_token=token, signup=app.settings.web.signup,
                    **context)  # fmt: skip
    response.set_cookie(security.PRE_SESSION_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


def pre_session_post(request: Request, form_token: str) -> None:
    security.check_origin(request)
    security.check_token(request.cookies.get(security.PRE_SESSION_COOKIE), form_token)


@router.post("/login")
def login(
    request: Request,
    app: AppDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    form_token: Annotated[str, Form()] = "",
    next: Annotated[str | None, Form()] = None,
) -> Response:
    pre_session_post(request, form_token)
    try:
        token = sessions.login(request, app, username, password)
    except Unauthenticated as exc:
        return _form(request, app, "login.html", status_code=401, error=str(exc), next=_safe_next(next))
    with app.store.transaction() as session:
        principal = accounts.authenticate_token(session, token)
    landing = _safe_next(next) or _home_of(sessions.Viewer(principal, ""))
    response = RedirectResponse(landing, status_code=303)
    sessions.set_cookie(response, request, app, token)
    return response


@router.post("/logout")
def logout(request: Request, app: AppDep, viewer: Posted) -> Response:
    sessions.logout(request, app)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


@router.get("/signup")
def signup_form(request: Request, app: AppDep) -> Response:
    _signup_open(app)
    return _form(request, app, "signup.html")


@router.post("/signup")
def signup(
    request: Request,
    app: AppDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    form_token: Annotated[str, Form()] = "",
) -> Response:
    """A subject account waiting to enroll; logged in at once."""
    _signup_open(app)
    pre_session_post(request, form_token)
    admit(request, app, None)  # sign-ups spend from the IP's bucket
    try:
        with app.store.transaction() as session:
            accounts.create_user(session, username, "subject", actor=ACTOR, password=password)
    except LikenessError as exc:
        return _form(request, app, "signup.html", status_code=400, error=str(exc))
    return login(request, app, username, password, form_token, "/me/enroll")


def _signup_open(app: AppDep) -> None:
    if not app.settings.web.signup:
        raise NotFound("sign-up is closed here: ask the operator for an account")
