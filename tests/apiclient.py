"""What the API tests share: an app on this test's database, an in-process client, tokens of each role."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from likeness import accounts
from likeness.api.app import create_app
from likeness.services.app import App

_names = itertools.count()


@pytest.fixture
def api(app: App) -> Iterator[FastAPI]:
    served = create_app(app)
    yield served
    served.state.checker.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://likeness.test") as c:
        yield c


def token(app: App, role: str, scopes: list[str] | None = None, subject_id: int | None = None) -> str:
    with app.store.transaction() as s:
        user = accounts.create_user(s, f"{role}{next(_names)}", role, actor="test", subject_id=subject_id)
        return accounts.create_token(s, user.id, actor="test", scopes=scopes).token


def bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}
