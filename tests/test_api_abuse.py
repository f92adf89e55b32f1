"""The abuse controls seen through the API, on a real database: two real uvicorn processes spend from one rate
limit, a shadow-banned submission is accepted and held but never analysed, the same picture from three accounts is
flagged as a coordinated attack, and an account probing many distinct hashes is flagged and then throttled."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from likeness import accounts
from likeness.abuse import operators
from likeness.services.app import App
from likeness.store.models import AbuseHeld, AbuseMeasure
from tests import images
from tests.apiclient import anyio_backend, api, bearer, client, token

__all__ = ["anyio_backend", "api", "client"]
JPEG = "image/jpeg"
_SERVE = "import sys; from likeness.cli.main import app; sys.exit(app())"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _started(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def _wait_healthy(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"likeness serve exited: {proc.stderr.read().decode() if proc.stderr else ''}"
        assert time.monotonic() < deadline, "likeness serve did not start"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


@pytest.fixture
def two_servers(cli_env: dict[str, str]) -> Iterator[list[str]]:
    """Two ``likeness serve`` processes on one database, each token's bucket 3 requests with next to no refill."""
    env = {**cli_env, "LIKENESS_ABUSE__TOKEN_BURST": "3", "LIKENESS_ABUSE__TOKEN_RATE_PER_S": "0.001"}
    servers = [_started(env), _started(env)]  # both start at once: their imports overlap
    try:
        for proc, url in servers:
            _wait_healthy(proc, url)
        yield [url for _, url in servers]
    finally:
        for proc, _ in servers:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, _ in servers:
            proc.wait(timeout=30)
            if proc.stderr is not None:
                proc.stderr.close()


def test_two_api_processes_share_one_rate_limit(app: App, two_servers: list[str]) -> None:
    headers = bearer(token(app, "reviewer"))
    answers = [httpx.get(f"{two_servers[i % 2]}/v1/me", headers=headers, timeout=30) for i in range(8)]
    assert [a.status_code for a in answers] == [200] * 3 + [429] * 5  # A, B, A let through: one bucket of 3
    for refused in answers[3:]:
        assert refused.json()["kind"] == "rate_limited"
        assert int(refused.headers["retry-after"]) >= 100  # a token a thousand seconds: wait for it, not retry


def _account(app: App, role: str = "reviewer") -> tuple[int, dict[str, str]]:
    with app.store.transaction() as s:
        user = accounts.create_user(s, f"abuse-{role}-{os.urandom(4).hex()}", role, actor="test")
        return user.id, bearer(accounts.create_token(s, user.id, actor="test").token)


def _count(app: App, table: str) -> int:
    with app.store.transaction() as s:
        return int(s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _analysis_workers() -> list[multiprocessing.process.BaseProcess]:
    """The Checker's analysis processes (services/pool.py names them), children of this test's process."""
    return [p for p in multiprocessing.active_children() if p.name == "likeness-analysis"]


@pytest.mark.anyio
async def test_a_shadow_banned_check_is_accepted_held_and_not_analysed(app: App, client: httpx.AsyncClient) -> None:
    account_id, headers = _account(app)
    with app.store.transaction() as s:
        ban = operators.ban(s, account_id, actor="test", shadow=True)
    picture = images.encode(images.astronaut())
    upload = {"file": ("a.jpg", picture, JPEG)}
    answered = await client.post("/v1/check", files=upload, headers=headers)
    assert answered.status_code == 200, answered.text
    assert answered.json()["sha256"] == hashlib.sha256(picture).hexdigest() and answered.json()["faces"] == []
    with app.store.transaction() as s:
        held = s.scalars(select(AbuseHeld)).one()
    assert (held.account_id, held.what, held.detail["sha256"]) == (account_id, "check", answered.json()["sha256"])
    # Not analysed: no analysis process was ever started, and nothing it would have produced reached the controls.
    assert _analysis_workers() == []
    assert _count(app, "abuse_probes") == 0 and _count(app, "abuse_uploads") == 0
    # The same request once the ban is lifted is analysed: the observables above do move.
    with app.store.transaction() as s:
        operators.lift(s, ban, actor="test")
    analysed = await client.post("/v1/check", files=upload, headers=headers)
    assert analysed.status_code == 200 and len(analysed.json()["faces"]) == 1
    assert len(_analysis_workers()) == 1
    assert _count(app, "abuse_probes") > 0 and _count(app, "abuse_uploads") == 1
    assert _count(app, "abuse_held") == 1


def _coordinated(app: App) -> list[AbuseMeasure]:
    with app.store.transaction() as s:
        found = list(s.scalars(select(AbuseMeasure).where(AbuseMeasure.kind == "coordinated")))
        s.expunge_all()
        return found


@pytest.mark.anyio
async def test_the_same_picture_from_three_accounts_is_a_coordinated_attack(
    app: App, client: httpx.AsyncClient
) -> None:
    picture = images.encode(images.resize(images.astronaut(), 0.4))
    callers = [_account(app) for _ in range(3)]
    for n, (_, headers) in enumerate(callers, start=1):
        answered = await client.post("/v1/check", files={"file": ("a.jpg", picture, JPEG)}, headers=headers)
        assert answered.status_code == 200, answered.text
        assert len(_coordinated(app)) == (0 if n < 3 else 1), f"after {n} accounts"
    flag = _coordinated(app)[0]
    assert flag.detail["sha256"] == hashlib.sha256(picture).hexdigest()
    assert sorted(flag.detail["callers"]) == sorted(f"account:{account_id}" for account_id, _ in callers)
    # a fourth check of it by one of them raises no second flag: one attack, one thing for an operator to look at
    await client.post("/v1/check", files={"file": ("a.jpg", picture, JPEG)}, headers=callers[0][1])
    assert len(_coordinated(app)) == 1


def _pdqs(rng: random.Random, n: int) -> list[str]:
    return [rng.randbytes(32).hex() for _ in range(n)]


@pytest.fixture
async def elsewhere(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client from another address than ``client``'s."""
    transport = httpx.ASGITransport(app=api, client=("198.51.100.9", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://likeness.test") as c:
        yield c


@pytest.mark.anyio
async def test_probing_many_distinct_hashes_is_flagged_then_throttled(
    app: App, client: httpx.AsyncClient, elsewhere: httpx.AsyncClient
) -> None:
    app.settings.abuse = app.settings.abuse.model_copy(update={"enumeration_max_distinct": 5})
    account_id, headers = _account(app)
    rng = random.Random(10)
    first = _pdqs(rng, 3)

    async def lookup(hashes: list[str], via: httpx.AsyncClient = client, who: dict[str, str] = headers) -> int:
        answered = await via.post("/v1/hashes/lookup", json={"hashes": hashes}, headers=who)
        return answered.status_code

    assert await lookup(first) == 200
    assert await lookup(first) == 200  # the same hashes again are no new probes
    with app.store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(AbuseMeasure)) == 0
    assert await lookup(_pdqs(rng, 3)) == 200  # 6 distinct: past 5, flagged; this lookup is answered
    with app.store.transaction() as s:
        flag = s.scalars(select(AbuseMeasure).where(AbuseMeasure.kind == "enumeration")).one()
        assert (flag.subject, flag.account_id, flag.detail["distinct"]) == (f"account:{account_id}", account_id, 6)
    throttled = await client.post("/v1/hashes/lookup", json={"hashes": first}, headers=headers)
    assert throttled.status_code == 429 and throttled.json()["kind"] == "rate_limited"
    assert int(throttled.headers["retry-after"]) > 3000  # the throttle lasts enumeration_throttle_s (an hour)
    # the throttle is the prober's: another account on another address still looks up
    assert await lookup(first, elsewhere, _account(app)[1]) == 200


@pytest.mark.anyio
async def test_token_guessing_is_rate_limited_per_address_and_a_right_guess_learns_nothing(
    app: App, client: httpx.AsyncClient, elsewhere: httpx.AsyncClient
) -> None:
    # no trust penalty here, so the bucket's size alone says when guessing stops (test_abuse.py covers trust)
    penalties = {**app.settings.abuse.penalties, "invalid_token": 0.0}
    app.settings.abuse = app.settings.abuse.model_copy(
        update={"ip_burst": 3.0, "ip_rate_per_s": 0.001, "penalties": penalties}
    )
    guesses = [bearer("lk_" + rng_token) for rng_token in ("A" * 43, "B" * 43, "C" * 43, "D" * 43)]
    answers = [(await client.get("/v1/me", headers=guess)).status_code for guess in guesses]
    assert answers == [401, 401, 401, 429]
    _, right = _account(app)
    refused = await client.get("/v1/me", headers=right)  # the right token from the guessing address: refused too
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 100
    assert (await elsewhere.get("/v1/me", headers=right)).status_code == 200
