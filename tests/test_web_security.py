"""The pages' defences, over HTTP without a browser: security headers, form tokens, the session cookie's flags,
sessions that end at logout, redirects that stay on the site, sign-up only when opened, and the protect page's
case number and PIN (the hash withdrawn with the case)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from likeness.services import hashes
from likeness.services.app import App, open_app
from likeness.settings import Settings, WebSettings
from likeness.store.models import Account, ApiToken
from likeness.web import create_site
from likeness.web.security import CSP
from tests.website import PASSWORD, account

pytestmark = pytest.mark.anyio
SITE = "http://likeness.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    site = create_site(app)
    transport = httpx.ASGITransport(app=site, client=("203.0.113.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=SITE) as client:
        yield client
    site.state.checker.close()


@pytest.fixture
async def client(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(app):
        yield c


def _token(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} in the page"
    return found.group(1)


async def _log_in(client: httpx.AsyncClient, username: str) -> httpx.Response:
    form = await client.get("/login")
    data = {"username": username, "password": PASSWORD, "form_token": _token(form.text, "form_token")}
    return await client.post("/login", data=data, headers={"origin": SITE})


async def test_pages_carry_a_strict_policy_and_are_never_cached(client: httpx.AsyncClient) -> None:
    for path in ("/login", "/protect", "/nowhere"):
        answer = await client.get(path)
        assert answer.headers["content-security-policy"] == CSP, path
        assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
        assert answer.headers["x-content-type-options"] == "nosniff" and answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store" and answer.headers["referrer-policy"] == "same-origin"
    assert (await client.get("/nowhere")).headers["content-type"].startswith("text/html")
    assert (await client.get("/v1/nowhere")).headers["content-type"] == "application/problem+json"
    assert "content-security-policy" not in (await client.get("/docs")).headers  # Swagger UI's CDN scripts
    page = (await client.get("/login")).text
    assert "<script>" not in page and " style=" not in page and not re.search(r"\son[a-z]+=", page)  # all inline


async def test_forms_need_their_token_and_this_site_as_origin(app: App, client: httpx.AsyncClient) -> None:
    name = account(app, "reviewer")
    form = await client.get("/login")
    token = _token(form.text, "form_token")
    data = {"username": name, "password": PASSWORD}
    assert (await client.post("/login", data=data)).status_code == 403  # no token
    assert (await client.post("/login", data={**data, "form_token": "forged"})).status_code == 403
    crossed = await client.post("/login", data={**data, "form_token": token}, headers={"origin": "https://evil.test"})
    assert crossed.status_code == 403
    assert (await _log_in(client, name)).status_code == 303
    assert (await client.post("/logout", data={"csrf": "forged"}, headers={"origin": SITE})).status_code == 403
    queue = await client.get("/review")
    assert queue.status_code == 200
    csrf = _token(queue.text, "csrf")
    crossed = await client.post("/logout", data={"csrf": csrf}, headers={"origin": "https://evil.test"})
    assert crossed.status_code == 403


async def test_a_session_is_a_revocable_token_in_a_strict_cookie(app: App, client: httpx.AsyncClient) -> None:
    name = account(app, "reviewer")
    logged = await _log_in(client, name)
    cookie = logged.headers["set-cookie"]
    assert cookie.startswith("likeness_session=lk_") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain http here; https (or web.cookie_secure) sets it
    with app.store.transaction() as s:
        session = s.scalar(select(ApiToken).where(ApiToken.label == "web session"))
        assert session is not None and session.revoked_at is None and session.expires_at is not None
    queue = await client.get("/review")
    await client.post("/logout", data={"csrf": _token(queue.text, "csrf")}, headers={"origin": SITE})
    with app.store.transaction() as s:
        assert s.scalar(select(ApiToken.revoked_at).where(ApiToken.label == "web session")) is not None
    raw = cookie.split(";")[0].split("=", 1)[1]
    client.cookies.set("likeness_session", raw)  # the old cookie, kept: it opens nothing now
    again = await client.get("/review")
    assert again.status_code == 303 and again.headers["location"] == "/login?next=/review"
    assert (await client.get("/v1/stats", headers={"authorization": f"Bearer {raw}"})).status_code == 401


async def test_login_redirects_stay_on_this_site_and_wrong_passwords_say_nothing_more(
    app: App, client: httpx.AsyncClient
) -> None:
    name = account(app, "reviewer")
    form = await client.get("/login?next=//evil.test/x")
    assert "evil.test" not in form.text
    token = _token(form.text, "form_token")
    data = {"username": name, "password": PASSWORD, "form_token": token, "next": "//evil.test/x"}
    logged = await client.post("/login", data=data, headers={"origin": SITE})
    assert logged.headers["location"] == "/review"
    client.cookies.clear()
    form = await client.get("/login")
    wrong = {"username": name, "password": "not the password", "form_token": _token(form.text, "form_token")}
    refused = await client.post("/login", data=wrong, headers={"origin": SITE})
    unknown = await client.post("/login", data={**wrong, "username": "nobody"}, headers={"origin": SITE})
    assert refused.status_code == unknown.status_code == 401
    assert "wrong username or password" in refused.text and "wrong username or password" in unknown.text


async def test_sign_up_only_where_the_operator_opened_it(
    app: App, client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await client.get("/signup")).status_code == 404
    opened = settings.model_copy(update={"web": WebSettings(signup=True)})
    with open_app(opened) as other:
        async for c in _client(other):
            form = await c.get("/signup")
            data = {"username": "someone", "password": PASSWORD, "form_token": _token(form.text, "form_token")}
            made = await c.post("/signup", data=data, headers={"origin": SITE})
            assert made.status_code == 303 and made.headers["location"] == "/me/enroll"
            assert (await c.get("/me/enroll")).status_code == 200
    with app.store.transaction() as s:
        row = s.scalar(select(Account).where(Account.username == "someone"))
        assert row is not None and row.role == "subject" and row.subject_id is None


async def test_a_protected_hash_gets_a_case_whose_pin_shows_and_withdraws_it(
    app: App, client: httpx.AsyncClient
) -> None:
    form = await client.get("/protect")
    token = re.search(r'data-form-token="([^"]+)"', form.text)
    assert token
    pdq = "f" * 16 + "0" * 16 + "a5" * 16
    headers = {"origin": SITE, "x-form-token": token.group(1)}
    assert (await client.post("/protect", json={"pdq": pdq, "quality": 90})).status_code == 403
    low = await client.post("/protect", json={"pdq": pdq, "quality": 10}, headers=headers)
    assert low.status_code == 422 and "quality" in low.json()["detail"]
    made = await client.post("/protect", json={"pdq": pdq, "quality": 90}, headers=headers)
    assert made.status_code == 200, made.text
    case, pin = made.json()["case"], made.json()["pin"]
    assert set(made.json()) == {"case", "pin", "pdq", "quality"}  # nothing about what the catalogue holds
    assert hashes.lookup(app, [pdq])[0][0].bank == "ncii"
    page = await client.get("/protect/case")
    fields = {"number": case, "pin": pin, "form_token": _token(page.text, "form_token")}
    shown = await client.post("/protect/case", data=fields, headers={"origin": SITE})
    assert shown.status_code == 200 and "open" in shown.text and case in shown.text
    wrong = await client.post("/protect/case", data={**fields, "pin": "00000000"}, headers={"origin": SITE})
    assert wrong.status_code == 401
    gone = await client.post("/protect/case", data={**fields, "withdraw": "true"}, headers={"origin": SITE})
    assert gone.status_code == 200 and "withdrawn" in gone.text
    assert hashes.lookup(app, [pdq]) == [[]]
