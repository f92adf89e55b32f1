"""URLs: only public addresses by default (SSRF guard); a real local HTTP server for the fetch path."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from likeness.errors import BlockedAddress, FetchError, TooLarge, UnsafeUrl
from likeness.fetch import Fetcher, check_url
from likeness.fetch.polite import CircuitOpen, RobotsDisallowed
from likeness.services import scan
from likeness.services.app import App
from likeness.settings import FetchSettings
from tests import images

PICTURE = images.encode(images.astronaut_face_crop())


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        routes = {
            "/face.jpg": (200, PICTURE),
            "/big.jpg": (200, b"\xff\xd8\xff" + b"0" * 5000),
            "/always-503.jpg": (503, b"busy"),
        }
        if self.path == "/robots.txt" and self.server.robots_status:  # type: ignore[attr-defined]
            time.sleep(self.server.robots_delay_s)  # type: ignore[attr-defined]
            self.send_response(self.server.robots_status)  # type: ignore[attr-defined]
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path in ("/to-metadata", "/robots.txt") and self.server.robots_redirect:  # type: ignore[attr-defined]
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        if self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        status, body = routes.get(self.path, (404, b"missing"))
        if self.path == "/page.html":
            status, body = 200, b"<html></html>"
        self.send_response(status)
        if self.path == "/page.html":
            self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


_SERVERS: dict[str, ThreadingHTTPServer] = {}


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.robots_redirect = False  # type: ignore[attr-defined]
    httpd.robots_status = 0  # type: ignore[attr-defined]
    httpd.robots_delay_s = 0.0  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    _SERVERS[base] = httpd
    yield base
    httpd.shutdown()
    del _SERVERS[base]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.jpg",
        "http://10.1.2.3/x.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/x.jpg",
        "http://192.168.0.10/x.jpg",
        "http://[::ffff:127.0.0.1]/x.jpg",
        "http://0.0.0.0/",
    ],
)
def test_literal_private_addresses_are_refused(url: str) -> None:
    with pytest.raises(BlockedAddress, match="not a public address"):
        check_url(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="only http and https"):
        check_url(url)


def test_names_resolving_to_private_addresses_are_refused() -> None:
    with Fetcher(FetchSettings(retries=1), 1 << 20) as fetcher, pytest.raises(BlockedAddress, match="localhost"):
        fetcher.get("http://localhost:9/x.jpg")


def test_redirect_to_a_private_address_is_refused(server: str) -> None:
    """The guard here lets the test server's own origin through; every later hop is checked as usual."""
    hops: list[str] = []

    def guard(url: str) -> object:
        hops.append(url)
        return None if url.startswith(server) else check_url(url)

    with Fetcher(FetchSettings(retries=1), 1 << 20, guard) as fetcher, pytest.raises(BlockedAddress, match=r"169\.254"):
        fetcher.get(server + "/to-metadata")
    # robots.txt is fetched through the guard too
    assert hops == [server + "/to-metadata", server + "/robots.txt", "http://169.254.169.254/latest/meta-data/"]


def test_size_cap_and_http_errors(server: str) -> None:
    with Fetcher(FetchSettings(retries=1, allow_private_networks=True), 1000) as fetcher:
        with pytest.raises(TooLarge, match="1000-byte limit"):
            fetcher.get(server + "/big.jpg")
        with pytest.raises(FetchError, match="HTTP 404"):
            fetcher.get(server + "/nope.jpg")


def test_scan_urls(app: App, server: str) -> None:
    blocked = scan.scan(app, [server + "/face.jpg"], actor="test")
    assert [e.kind for e in blocked.errors] == ["blocked_address"] and not blocked.errors[0].recorded
    app.settings.fetch.allow_private_networks = True
    fetched = scan.scan(app, [server + "/face.jpg", server + "/missing.jpg"], actor="test")
    assert fetched.analyzed == 1 and fetched.faces == 1
    assert [e.kind for e in fetched.errors] == ["fetch"]


def test_circuit_opens_on_a_failing_host(server: str) -> None:
    settings = FetchSettings(retries=2, backoff_s=0.01, breaker_failures=3, allow_private_networks=True)
    with Fetcher(settings, 1 << 20) as fetcher:
        for _ in range(2):  # two attempts each: the third failure opens the circuit
            with pytest.raises(FetchError):
                fetcher.get(server + "/always-503.jpg")
        requests = fetcher.stats.requests
        with pytest.raises(CircuitOpen, match="left alone"):
            fetcher.get(server + "/face.jpg")
        assert fetcher.stats.requests == requests  # refused without a request


def test_html_served_as_media_is_refused(server: str) -> None:
    refused = pytest.raises(FetchError, match="served as text/html, not a picture or video")
    with Fetcher(FetchSettings(allow_private_networks=True), 1 << 20) as fetcher, refused:
        fetcher.get(server + "/page.html")


def test_robots_txt_redirecting_to_a_private_address_means_stay_out(server: str) -> None:
    """The robots.txt fetch follows redirects through the guard too; an unreachable robots.txt disallows all."""
    hops: list[str] = []

    def guard(url: str) -> object:
        hops.append(url)
        return None if url.startswith(server) else check_url(url)

    _SERVERS[server].robots_redirect = True  # type: ignore[attr-defined]
    stay_out = pytest.raises(RobotsDisallowed, match=r"robots\.txt unreachable \(.*169\.254\.169\.254.*\); staying out")
    with Fetcher(FetchSettings(retries=1), 1 << 20, guard) as fetcher, stay_out:
        fetcher.get(server + "/face.jpg")
    assert "http://169.254.169.254/latest/meta-data/" in hops


@pytest.mark.parametrize(("status", "delay_s", "says"), [(503, 0.0, r"HTTP 503"), (200, 3.0, r"timed out")])
def test_an_unreachable_robots_txt_means_stay_out_and_the_message_says_why(
    server: str, status: int, delay_s: float, says: str
) -> None:
    """RFC 9309 §2.3.1.4: a 5xx or a timeout on robots.txt means complete disallow; the item says it was that."""
    _SERVERS[server].robots_status, _SERVERS[server].robots_delay_s = status, delay_s  # type: ignore[attr-defined]
    settings = FetchSettings(retries=1, timeout_s=0.5, allow_private_networks=True)
    stay_out = pytest.raises(RobotsDisallowed, match=rf"robots\.txt unreachable \({says}.*\); staying out")
    with Fetcher(settings, 1 << 20) as fetcher, stay_out:
        fetcher.get(server + "/face.jpg")


def test_a_scan_reports_a_name_that_does_not_resolve_as_dns(app: App) -> None:
    """Was "robots disallowed": robots.txt could not be read because the name does not exist (RFC 6761 .invalid)."""
    summary = scan.scan(app, ["http://likeness-scan-test.invalid/face.jpg"], actor="test")
    assert [e.kind for e in summary.errors] == ["dns"]
    assert "does not resolve" in summary.errors[0].message
