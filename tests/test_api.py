"""The HTTP API in-process (httpx's ASGI transport) on a real database: authentication and scopes on every path,
problem details, uploads capped before they are read and typed by their bytes, and consent-gated self-search."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from likeness.api import problems
from likeness.errors import RateLimited
from likeness.services import hashes, review, scan, subjects
from likeness.services.app import App
from likeness.store.models import Base
from tests import images
from tests.apiclient import anyio_backend, api, bearer, client, token

__all__ = ["anyio_backend", "api", "client"]
pytestmark = pytest.mark.anyio
JPEG = "image/jpeg"


def _calls(api: FastAPI) -> list[tuple[str, str]]:
    found = []
    for path, item in api.openapi()["paths"].items():
        for method in item:
            filled = path
            for part in [p for p in path.split("/") if p.startswith("{")]:
                filled = filled.replace(part, "1")
            found.append((method.upper(), filled))
    return found


async def test_every_path_but_health_needs_a_token_and_its_scope(
    app: App, api: FastAPI, client: httpx.AsyncClient
) -> None:
    calls = _calls(api)
    assert ("GET", "/health") in calls and len(calls) >= 20
    scopeless = bearer(token(app, "admin", scopes=[]))
    # A wrong token per path from one IP is token guessing, rate-limited per IP (test_api_abuse.py): not this test's
    app.settings.abuse = app.settings.abuse.model_copy(update={"ip_burst": 10_000.0, "ip_rate_per_s": 10_000.0})
    for method, path in calls:
        if path == "/health":
            assert (await client.request(method, path)).status_code == 200
            continue
        anonymous = await client.request(method, path)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["content-type"] == problems.MEDIA_TYPE
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = await client.request(method, path, headers=bearer("lk_" + "A" * 43))
        assert wrong.status_code == 401, (method, path)
        lacking = await client.request(method, path, headers=scopeless)
        expected = 200 if path == "/v1/me" else 403  # who am I needs no scope
        assert lacking.status_code == expected, (method, path, lacking.text)
        if expected == 403:
            assert lacking.json()["kind"] == "forbidden"


async def test_problem_details_carry_the_kind_and_retry_after() -> None:
    response = problems.from_error(RateLimited("slow down", retry_after=2.2))
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.media_type == problems.MEDIA_TYPE
    assert b'"kind":"rate_limited"' in response.body and b'"title":"Too Many Requests"' in response.body


async def test_an_oversized_upload_is_refused_before_its_body_is_read(app: App, client: httpx.AsyncClient) -> None:
    headers = bearer(token(app, "reviewer"))
    read: list[int] = []

    async def body() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n\r\n'
        for _ in range(100):
            read.append(1)
            yield b"x" * 1024 * 1024

    declared = {**headers, "content-type": "multipart/form-data; boundary=b", "content-length": str(2**30)}
    response = await client.post("/v1/check", content=body(), headers=declared)
    assert response.status_code == 413 and response.json()["kind"] == "too_large"
    assert len(read) <= 1  # the transport may pull one chunk ahead; the app never asked for it
    # no Content-Length (chunked): cut off where the stream passes the cap
    app.settings.api.max_upload_bytes = 3 * 1024 * 1024
    read.clear()
    chunked = {**headers, "content-type": "multipart/form-data; boundary=b"}
    response = await client.post("/v1/check", content=body(), headers=chunked)
    assert response.status_code == 413 and len(read) <= 5


async def test_uploads_are_typed_by_their_bytes(app: App, client: httpx.AsyncClient) -> None:
    headers = bearer(token(app, "reviewer"))
    text_file = {"file": ("photo.jpg", b"just text, named and labelled as a JPEG", JPEG)}
    response = await client.post("/v1/check", files=text_file, headers=headers)
    assert response.status_code == 415 and response.json()["kind"] == "unsupported_format"
    empty = await client.post("/v1/check", files={"file": ("e.jpg", b"", JPEG)}, headers=headers)
    assert empty.status_code == 422 and empty.json()["kind"] == "empty"
    video = await client.post(
        "/v1/check", files={"file": ("v.mp4", b"\0\0\0\x18ftypisom" + b"\0" * 64)}, headers=headers
    )
    assert video.status_code == 422 and "/v1/batch" in video.json()["detail"]
    corrupt = await client.post("/v1/check", files={"file": ("c.gif", b"GIF89a" + b"\0" * 40, JPEG)}, headers=headers)
    assert corrupt.status_code == 422 and corrupt.json()["kind"] == "corrupt", corrupt.text


def _enrol_two(app: App, tmp_path: Path) -> tuple[int, int]:
    """Eileen Collins (the astronaut) and Grace Hopper, and a scanned folder with a copy of each."""
    a = subjects.enroll(
        app, "Eileen", [subjects.Photo("a.jpg", images.encode(images.astronaut_face_crop()))], actor="test"
    )
    b = subjects.enroll(app, "Grace", [subjects.Photo("b.jpg", images.encode(images.grace_hopper()))], actor="test")
    images.write(tmp_path / "scan" / "eileen.jpg", images.resize(images.astronaut(), 0.7))
    images.write(tmp_path / "scan" / "grace.png", images.resize(images.grace_hopper(), 0.8), "PNG")
    scan.scan(app, [str(tmp_path / "scan")], actor="test")
    return a.subject_id, b.subject_id


async def test_subject_a_reaches_none_of_subject_bs_data(app: App, client: httpx.AsyncClient, tmp_path: Path) -> None:
    a, b = _enrol_two(app, tmp_path)
    mine = {m.subject_id: m for m in review.list_matches(app)}
    assert set(mine) == {a, b}
    as_a = bearer(token(app, "subject", subject_id=a))
    listed = (await client.get("/v1/subjects", headers=as_a)).json()
    assert [s["id"] for s in listed] == [a]
    matches = (await client.get("/v1/matches", headers=as_a)).json()["items"]
    assert {m["subject_id"] for m in matches} == {a}
    assert (await client.get(f"/v1/media/{mine[a].media_id}", headers=as_a)).status_code == 200
    photo = {"photos": ("b2.jpg", images.encode(images.grace_hopper()), JPEG)}
    for method, path, extra in [
        ("GET", f"/v1/subjects/{b}", {}),
        ("GET", f"/v1/matches/{mine[b].id}", {}),
        ("GET", f"/v1/media/{mine[b].media_id}", {}),
        ("POST", f"/v1/subjects/{b}/references", {"files": photo}),
        ("DELETE", f"/v1/subjects/{b}", {}),
        ("POST", f"/v1/matches/{mine[b].id}/review", {"json": {"status": "rejected"}}),
        ("GET", f"/v1/hashes/{1}", {}),
        ("GET", "/v1/stats", {}),
    ]:
        response = await client.request(method, path, headers=as_a, **extra)
        assert response.status_code in (403, 404), (method, path, response.text)
        assert "Grace" not in response.text
    # a face query: B's face matches nobody A may see; A's own face matches A
    grace = await client.post(
        "/v1/check", files={"file": ("g.jpg", images.encode(images.grace_hopper()), JPEG)}, headers=as_a
    )
    assert grace.status_code == 200, grace.text
    assert len(grace.json()["faces"]) == 1 and grace.json()["face_matches"] == [] and grace.json()["hash_matches"] == []
    eileen = await client.post(
        "/v1/check", files={"file": ("e.jpg", images.encode(images.astronaut()), JPEG)}, headers=as_a
    )
    assert [m["subject_id"] for m in eileen.json()["face_matches"]] == [a]
    # a reviewer's face query sees every subject
    as_reviewer = bearer(token(app, "reviewer"))
    seen = await client.post(
        "/v1/check", files={"file": ("g.jpg", images.encode(images.grace_hopper()), JPEG)}, headers=as_reviewer
    )
    assert [m["subject_id"] for m in seen.json()["face_matches"]] == [b]
    # A withdraws itself; its token then stops working, and B is untouched
    assert (await client.delete(f"/v1/subjects/{a}", headers=as_a)).status_code == 200
    assert (await client.get("/v1/me", headers=as_a)).status_code == 401
    assert [s.id for s in subjects.list_subjects(app)] == [b]


async def test_hashes_protect_lookup_read_withdraw(app: App, client: httpx.AsyncClient) -> None:
    hashes.require_bank(app, "victims", create=True, actor="test")
    headers = bearer(token(app, "reviewer"))
    pdq = "f" * 16 + "0" * 16 + "a5" * 16
    near = "e" + pdq[1:]
    added = await client.post(
        "/v1/hashes", json={"bank": "victims", "hashes": [{"pdq": pdq, "quality": 90}]}, headers=headers
    )
    assert added.status_code == 201, added.text
    hash_id = added.json()["added"][0]["hash_id"]
    found = (await client.post("/v1/hashes/lookup", json={"hashes": [near, "0" * 64]}, headers=headers)).json()
    assert [[h["hash_id"] for h in r["matches"]] for r in found["results"]] == [[hash_id], []]
    assert found["results"][0]["matches"][0]["distance"] == 1
    info = (await client.get(f"/v1/hashes/{hash_id}", headers=headers)).json()
    assert info["pdq_hex"] == pdq and info["bank"] == "victims"
    assert (await client.delete(f"/v1/hashes/{hash_id}", headers=headers)).status_code == 200
    assert (await client.get(f"/v1/hashes/{hash_id}", headers=headers)).status_code == 404
    unknown = await client.post("/v1/hashes", json={"bank": "nope", "hashes": [{"pdq": pdq}]}, headers=headers)
    assert unknown.status_code == 404
    bad = await client.post("/v1/hashes/lookup", json={"hashes": ["xyz"]}, headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"]


async def test_tokens_by_password_then_by_token_never_wider(app: App, client: httpx.AsyncClient) -> None:
    from likeness import accounts

    with app.store.transaction() as s:
        accounts.create_user(s, "rita", "reviewer", actor="test", password="a long enough password")
    basic = {"Authorization": "Basic " + base64.b64encode(b"rita:a long enough password").decode()}
    made = await client.post("/v1/tokens", json={"label": "laptop", "scopes": ["stats", "tokens"]}, headers=basic)
    assert made.status_code == 201, made.text
    first = made.json()["token"]
    assert (await client.get("/v1/stats", headers=bearer(first))).status_code == 200
    child = await client.post("/v1/tokens", json={"scopes": ["stats", "matches:review"]}, headers=bearer(first))
    assert child.status_code == 201 and child.json()["info"]["scopes"] == ["stats"]
    listed = (await client.get("/v1/tokens", headers=bearer(first))).json()["tokens"]
    assert len(listed) == 2 and all("token" not in t for t in listed)
    child_id = child.json()["info"]["id"]
    assert (await client.delete(f"/v1/tokens/{child_id}", headers=bearer(first))).status_code == 200
    assert (await client.get("/v1/stats", headers=bearer(child.json()["token"]))).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"rita:not the password").decode()}
    assert (await client.post("/v1/tokens", json={}, headers=wrong)).status_code == 401


async def test_token_values_appear_nowhere_in_the_database(app: App, client: httpx.AsyncClient) -> None:
    raw = [token(app, role) for role in ("admin", "reviewer")]
    for value in raw:
        assert (await client.get("/v1/stats", headers=bearer(value))).status_code == 200
    secrets = [v for value in raw for v in (value, value[len("lk_") :], value[len("lk_") : len("lk_") + 16])]
    with app.store.transaction() as s:
        tables = [t.name for t in Base.metadata.sorted_tables]
        dump = "\n".join(str(row[0]) for t in tables for row in s.execute(text(f'SELECT t::text FROM "{t}" t')))
        hexdump = "\n".join(str(row[0]) for row in s.execute(text("SELECT encode(digest, 'escape') FROM api_tokens")))
    assert "api_tokens" in tables and dump
    for value in secrets:
        assert value not in dump and value not in hexdump


async def test_review_with_a_note_and_paginate(app: App, client: httpx.AsyncClient, tmp_path: Path) -> None:
    _enrol_two(app, tmp_path)
    headers = bearer(token(app, "reviewer"))
    page = (await client.get("/v1/matches", params={"limit": 1}, headers=headers)).json()
    rest = (await client.get("/v1/matches", params={"limit": 1, "offset": 1}, headers=headers)).json()
    assert len(page["items"]) == 1 and len(rest["items"]) == 1 and page["items"][0]["id"] != rest["items"][0]["id"]
    match_id = page["items"][0]["id"]
    done = await client.post(
        f"/v1/matches/{match_id}/review", json={"status": "confirmed", "note": "seen"}, headers=headers
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "confirmed" and done.json()["note"] == "seen"
    confirmed = (await client.get("/v1/matches", params={"status": "confirmed"}, headers=headers)).json()["items"]
    assert [m["id"] for m in confirmed] == [match_id]
    assert confirmed[0]["sightings"] and confirmed[0]["sightings"][0]["url"]
