"""The API on a real uvicorn server on loopback: served, authenticated, an upload checked over a socket, and an
oversized upload refused from its headers while the client has sent no byte of the body."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from likeness.api.app import create_app
from likeness.services.app import App
from tests import images
from tests.apiclient import bearer, token
from tests.website import serving


@pytest.fixture
def server(app: App) -> Iterator[str]:
    with serving(create_app(app)) as url:
        yield url


def test_served_on_loopback(app: App, server: str) -> None:
    raw = token(app, "reviewer")
    with httpx.Client(base_url=server, timeout=60) as http:
        assert http.get("/health").json()["status"] == "ok"
        assert http.get("/v1/me").status_code == 401
        assert http.get("/v1/me", headers=bearer(raw)).json()["role"] == "reviewer"
        assert http.get("/openapi.json").json()["openapi"].startswith("3.1")
        picture = {"file": ("a.jpg", images.encode(images.astronaut()), "image/jpeg")}
        checked = http.post("/v1/check", files=picture, headers=bearer(raw))
        assert checked.status_code == 200, checked.text
        assert len(checked.json()["faces"]) == 1 and checked.json()["format"] == "jpeg"


def test_an_oversized_upload_is_refused_from_its_headers(app: App, server: str) -> None:
    host, port = server.removeprefix("http://").split(":")
    head = (
        "POST /v1/check HTTP/1.1\r\n"
        f"Host: {host}\r\nAuthorization: Bearer {token(app, 'reviewer')}\r\n"
        "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000000\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head.encode())  # and not one byte of the body
        chunks = []
        while chunk := conn.recv(65536):  # the server closes after its answer; head and body may come apart
            chunks.append(chunk)
    answer = b"".join(chunks).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "application/problem+json" in answer and "too_large" in answer
