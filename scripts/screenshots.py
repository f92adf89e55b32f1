"""`make screenshots`: every page of the web UI rendered to docs/ui/*.png, on the demo corpus (pictures shipped
in installed packages), a fresh embedded database, a real uvicorn server and the system's Chromium.

Desktop pages at 1280x800, the subject's pages and the review queue also at a phone's 390x844. A loopback page
server stands in for a platform, so that a confirmed match freezes real evidence."""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from likeness import accounts
from likeness.services import corpus, hashes, review, scan, subjects
from likeness.services.app import App, open_app
from likeness.settings import EvidenceSettings, Settings
from likeness.store.models import Sighting
from likeness.web import create_site

OUT = Path(__file__).resolve().parents[1] / "docs" / "ui"
PASSWORD = "screenshots only, not a secret"
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@contextmanager
def platform(routes: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """A post page showing a picture (put in ``routes`` later: the one a match was found in); yields host:port."""
    routes["/post/1"] = ("text/html", b"<!doctype html><title>post 1</title><h1>a post</h1><img src='/a.jpg'>")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            kind, body = routes.get(self.path, ("text/plain", b"not here"))
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


@contextmanager
def served(app: App) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_site(app), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def catalogue(app: App, made: corpus.Corpus, host: str, routes: dict[str, tuple[str, bytes]]) -> tuple[int, int]:
    """The demo: Eileen enrolled, the cat protected by hash, the corpus scanned; one copy also on the platform."""
    eileen = subjects.enroll(app, "Eileen Collins (sample)", [subjects.Photo("ref.jpg", made.reference.read_bytes())],
                             actor="screenshots").subject_id  # fmt: skip
    hashes.require_bank(app, "ncii", create=True, actor="screenshots")
    hashes.add_files(app, "ncii", [subjects.Photo("cat.png", made.protected.read_bytes())], actor="screenshots",
                     submission="sample submission")  # fmt: skip
    scan.scan(app, [str(made.scan_dir)], actor="screenshots")
    first = next(m for m in review.list_matches(app, limit=None) if m.subject_id == eileen)
    url = f"http://{host}/a.jpg"
    routes["/a.jpg"] = ("image/jpeg", Path(first.location).read_bytes())
    with app.store.transaction() as s:
        s.add(Sighting(media_id=first.media_id, location=url, location_hash=hashlib.sha256(url.encode()).digest(),
                       page_url=f"http://{host}/post/1", platform="sample"))  # fmt: skip
    review.set_status(app, first.id, "confirmed", actor="screenshots", note="reposted without consent")
    return eileen, first.id


def user(app: App, name: str, role: str, subject_id: int | None = None) -> str:
    with app.store.transaction() as s:
        accounts.create_user(s, name, role, actor="screenshots", password=PASSWORD, subject_id=subject_id)
    return name


def log_in(page: Page, site: str, name: str) -> None:
    page.goto(f"{site}/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("networkidle")


def shoot(page: Page, url: str, name: str, viewport: dict[str, int] = DESKTOP) -> None:
    page.set_viewport_size(viewport)  # type: ignore[arg-type]
    page.goto(url)
    page.evaluate("document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })")
    page.wait_for_load_state("networkidle")
    page.wait_for_function("[...document.images].every(i => i.complete)")
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"docs/ui/{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="likeness-ui-"))
    made = corpus.build(work / "corpus")
    try:
        routes: dict[str, tuple[str, bytes]] = {}
        with platform(routes) as host:
            settings = Settings(home=work / "home", evidence=EvidenceSettings(allow_hosts=[host]))
            with open_app(settings) as app, served(app) as site:
                # confirming a match freezes its evidence, in a browser of its own
                eileen, confirmed = catalogue(app, made, host, routes)
                reviewer, subject = user(app, "reviewer", "reviewer"), user(app, "eileen", "subject", eileen)
                newcomer = user(app, "newcomer", "subject")
                with sync_playwright() as p:
                    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                    _pages(browser, site, reviewer, subject, newcomer, confirmed, made)
                    browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _pages(browser: Browser, site: str, reviewer: str, subject: str, newcomer: str, confirmed: int,
           made: corpus.Corpus) -> None:  # fmt: skip
    page = browser.new_page(viewport=DESKTOP)  # type: ignore[arg-type]
    shoot(page, f"{site}/login", "login")
    log_in(page, site, reviewer)
    shoot(page, f"{site}/review", "review-queue")
    shoot(page, f"{site}/review", "review-queue-phone", PHONE)
    hashed = next(m for m in review_matches(page, site) if "hash" in m)
    shoot(page, f"{site}{hashed}", "review-match-hash-blurred")
    shoot(page, f"{site}/review/matches/{confirmed}", "review-match-face")
    links = page.locator("a[href^='/review/evidence/']")
    if links.count():
        capture = links.first.get_attribute("href")
        shoot(page, f"{site}{capture}", "review-evidence")
    shoot(page, f"{site}/overview", "overview")
    page.context.clear_cookies()
    log_in(page, site, subject)
    shoot(page, f"{site}/me", "portal-matches")
    shoot(page, f"{site}/me", "portal-matches-phone", PHONE)
    page.context.clear_cookies()
    log_in(page, site, newcomer)
    shoot(page, f"{site}/me/enroll", "portal-enroll")
    page.context.clear_cookies()
    page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    page.goto(f"{site}/protect")
    page.get_by_label("Picture").set_input_files(str(made.protected))
    expect(page.locator("#pdq")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    page.screenshot(path=str(OUT / "protect.png"), full_page=True)
    print("docs/ui/protect.png")
    page.close()


def review_matches(page: Page, site: str) -> list[str]:
    """The match pages of the queue (status new), hash matches named so."""
    page.goto(f"{site}/review?status=all")
    rows = page.locator("table.queue tbody tr")
    found = []
    for n in range(rows.count()):
        row = rows.nth(n)
        kind = row.locator("td").nth(1).inner_text()
        found.append(f"{row.get_attribute('data-href')}#{'hash' if 'hash' in kind else 'face'}")
    return found


if __name__ == "__main__":
    main()
