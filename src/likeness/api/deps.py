"""What routes depend on, as Annotated aliases (``AppDep``, ``Check``, ...): the app, the authenticated
principal with one scope required, the caller as the abuse controls see it.

Every authenticated request is admitted by the abuse controls (``abuse.admit``) once, before its scope is
checked; the admission is kept on the request (``shadowed``). A presented token or password that is wrong lowers
the client IP's trust (``abuse.rejected``) and is admitted as the IP alone, spending from the IP's bucket as an
authenticated request does: guessing is rate-limited per address. Admitting after the check rather than before it
leaks nothing: once the IP's bucket is empty (or the address blocked) a right guess is refused by its own
admission just as a wrong one is, 429 (or 403) either way, and every request still spends from the bucket once."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer
from sqlalchemy.orm import Session

from likeness import abuse
from likeness.accounts import Principal, authenticate_token, principal_of, verify_password
from likeness.errors import Forbidden, LikenessError, RateLimited, Unauthenticated
from likeness.services.app import App
from likeness.services.check import Checker

_bearer = HTTPBearer(auto_error=False, description="An API token (`likeness tokens create`), `lk_...`")
_basic = HTTPBasic(auto_error=False, description="Username and password: only to create a token")


def get_app(request: Request) -> App:
    return request.app.state.likeness


def get_checker(request: Request) -> Checker:
    return request.app.state.checker


AppDep = Annotated[App, Depends(get_app)]
# Row ids are PostgreSQL integers: anything outside reads as not there (422), never as a database error.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
CheckerDep = Annotated[Checker, Depends(get_checker)]


def get_session(app: AppDep) -> Iterator[Session]:
    """One transaction for the route's work, committed when it returns."""
    with app.store.transaction() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def client_ip(request: Request, app: App) -> str:
    """The peer's address; X-Forwarded-For's last hop only when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "0.0.0.0"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in app.settings.api.trusted_proxies:
        last = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(last))
        except ValueError:
            return peer
    return peer


def caller_of(request: Request, app: App, principal: Principal | None) -> abuse.Caller:
    if principal is None:
        return abuse.Caller(None, None, client_ip(request, app))
    return abuse.Caller(principal.account_id, principal.token_id, client_ip(request, app))


def admit(request: Request, app: App, principal: Principal | None, cost: float = 1.0) -> None:
    """The caller (a principal, or None: the IP alone, for a page anyone may use) past the abuse controls, kept on
    the request; ``cost`` tokens spent from its buckets. Committed even when it refuses: a refusal's penalty and
    its log row must persist (abuse/__init__.py)."""
    caller = caller_of(request, app, principal)
    request.state.admission = _admission(request, app, caller, cost=cost)
    request.state.caller = caller


def _action(request: Request) -> str:
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


def refuse_credentials(request: Request, app: App) -> None:
    """A wrong token or password: the IP's trust falls, then the IP alone is admitted (a refusal raises here, in
    place of the 401)."""
    _admission(request, app, caller_of(request, app, None), penalty="invalid_token")


def _admission(
    request: Request, app: App, caller: abuse.Caller, penalty: str | None = None, cost: float = 1.0
) -> abuse.Admission:
    refused: LikenessError | None = None
    with app.store.transaction() as session:
        if penalty is not None:
            abuse.rejected(session, caller, penalty, settings=app.settings.abuse)
        try:
            admission = abuse.admit(session, caller, app.settings.abuse, action=_action(request), cost=cost)
        except (Forbidden, RateLimited) as exc:
            refused = exc
    if refused is not None:
        raise refused
    return admission


def authenticated(
    request: Request,
    app: AppDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if bearer is None or bearer.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is needed (Authorization: Bearer lk_...)")
    try:
        with app.store.transaction() as session:
            principal = authenticate_token(
                session, bearer.credentials, touch_every_s=app.settings.api.last_used_every_s
            )
    except Unauthenticated:
        refuse_credentials(request, app)
        raise
    admit(request, app, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticated)]


def require(scope: str) -> Callable[[Principal], Principal]:
    def scoped(principal: PrincipalDep) -> Principal:
        if scope not in principal.scopes:
            raise Forbidden(f"this token lacks the {scope!r} scope")
        return principal

    scoped.__name__ = f"require_{scope.replace(':', '_')}"
    return scoped


def password_or_token(
    request: Request,
    app: AppDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
) -> Principal:
    """Creating a token: with a password (every scope of the role) or with a token holding ``tokens``."""
    if bearer is not None:
        return require("tokens")(authenticated(request, app, bearer))
    if basic is None:
        raise Unauthenticated("a password (HTTP Basic) or a bearer token is needed")
    try:
        with app.store.transaction() as session:
            principal = principal_of(session, verify_password(session, basic.username, basic.password).id)
    except Unauthenticated:
        refuse_credentials(request, app)
        raise
    admit(request, app, principal)
    return principal


def shadowed(request: Request) -> bool:
    """The caller is shadow-banned: its submissions are held for review, answered as if processed."""
    admission = getattr(request.state, "admission", None)
    return bool(admission is not None and admission.shadow_banned)


def caller(request: Request) -> abuse.Caller:
    return request.state.caller


Check = Annotated[Principal, Depends(require("check"))]
HashesRead = Annotated[Principal, Depends(require("hashes:read"))]
HashesWrite = Annotated[Principal, Depends(require("hashes:write"))]
SubjectsRead = Annotated[Principal, Depends(require("subjects:read"))]
SubjectsWrite = Annotated[Principal, Depends(require("subjects:write"))]
SubjectsEnroll = Annotated[Principal, Depends(require("subjects:enroll"))]
MatchesRead = Annotated[Principal, Depends(require("matches:read"))]
MatchesReview = Annotated[Principal, Depends(require("matches:review"))]
Scan = Annotated[Principal, Depends(require("scan"))]
CrawlsRead = Annotated[Principal, Depends(require("crawls:read"))]
CrawlsWrite = Annotated[Principal, Depends(require("crawls:write"))]
Stats = Annotated[Principal, Depends(require("stats"))]
Tokens = Annotated[Principal, Depends(require("tokens"))]
Minting = Annotated[Principal, Depends(password_or_token)]
CallerDep = Annotated[abuse.Caller, Depends(caller)]
