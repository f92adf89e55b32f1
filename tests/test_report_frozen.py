"""A report never fetches a source again: it shows what a case froze, and says so where nothing was frozen."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from likeness.services import review, scan, subjects
from likeness.services.app import App, open_app
from likeness.services.subjects import Photo
from likeness.settings import Settings
from tests import images


class _Picture(BaseHTTPRequestHandler):
    body = images.encode(images.astronaut())
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Picture)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_report_of_a_url_match_fetches_nothing_without_frozen_evidence(
    settings: Settings, server: str, tmp_path: Path
) -> None:
    local = settings.model_copy(update={"fetch": settings.fetch.model_copy(update={"allow_private_networks": True})})
    app: App = open_app(local)
    try:
        subjects.enroll(app, "Eileen", [Photo("eileen.jpg", images.encode(images.astronaut_face_crop()))], actor="test")
        assert scan.scan(app, [f"{server}/post/1.jpg"], actor="test").face_matches == 1
        fetched = len(_Picture.hits)
        out = tmp_path / "report.html"
        assert review.write_report(app, out) == 1
        assert len(_Picture.hits) == fetched  # the report asked the source for nothing
        assert "no frozen evidence" in out.read_text()
    finally:
        app.close()
