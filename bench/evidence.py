"""Frozen evidence: capture time per match and bundle size, in the system's Chromium.

    python -m bench.evidence        (needs /usr/bin/chromium: apt-get install chromium)

A page server on loopback shows a protected picture on a page (as a crawled post would); a URL-list crawl finds it
and the hash match is confirmed, which freezes the evidence (``evidence.capture_on_confirm``). Then the same match
is captured again RUNS times on demand. Each capture starts its own browser, as the CLI does.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.common import table, thumbnail, write_section

RUNS = 10
PICTURE = thumbnail()
PAGE = b'<html><body><h1>a post</h1><p>some text</p><img src="/pic.jpg" width="400"></body></html>'


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, kind = (PICTURE, "image/jpeg") if self.path == "/pic.jpg" else (PAGE, "text/html")
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _plain(url: str, chromium: Path) -> float:
    """The baseline: the same browser started, the page loaded and screenshotted, nothing else (no guard, no
    MHTML, no hashes, no sealing)."""
    import time

    from playwright.sync_api import sync_playwright

    started = time.perf_counter()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(chromium))
        tab = browser.new_page()
        tab.goto(url, wait_until="networkidle")
        tab.screenshot(full_page=True)
        browser.close()
    return time.perf_counter() - started


def main() -> None:
    from likeness.analyze import hashing
    from likeness.media import decode
    from likeness.services import crawl, evidence, hashes, review
    from likeness.services.app import open_app
    from likeness.settings import EvidenceSettings, FetchSettings, Settings

    site = ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{site.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            home=Path(tmp) / "home",
            fetch=FetchSettings(allow_private_networks=True),
            evidence=EvidenceSettings(allow_hosts=[base.removeprefix("http://")]),
        )
        with open_app(settings) as app:
            digest, quality = hashing.pdq(decode(PICTURE, settings.media).pixels)
            hashes.add_hashes(app, "default", [hashes.HashIn(digest.hex(), quality)], actor="bench")
            (Path(tmp) / "urls.txt").write_text(f"{base}/post/1\n")
            crawl.crawl(app, crawl.url_list(app, Path(tmp) / "urls.txt"), actor="bench")
            [match] = review.list_matches(app, kind="hash", limit=None)
            review.set_status(app, match.id, "confirmed", actor="bench")  # freezes the first capture
            captures = [evidence.capture(app, match.id, actor="bench") for _ in range(RUNS)]
        plain = statistics.median(_plain(f"{base}/post/1", settings.evidence.chromium) for _ in range(RUNS))
    site.shutdown()
    seconds = sorted(c.seconds for c in captures)
    sizes = sorted(c.bytes for c in captures)
    p90 = seconds[int(0.9 * (len(seconds) - 1))], sizes[int(0.9 * (len(sizes) - 1))]
    rows = [
        ["capture s", f"{statistics.median(seconds):.2f}", f"{p90[0]:.2f}"],
        ["plain Playwright load + screenshot s (baseline)", f"{plain:.2f}", ""],
        ["capture vs baseline", f"{statistics.median(seconds) / plain:.2f}x", ""],
        ["bundle KiB", f"{statistics.median(sizes) / 1024:.0f}", f"{p90[1] / 1024:.0f}"],
        ["files", captures[0].files, captures[-1].files],
    ]
    for row in rows:
        print(row, flush=True)
    write_section(
        "evidence",
        "Frozen evidence: capture time and bundle size",
        f"""
A page on loopback showing a ~450 px JPEG, found by a URL-list crawl and matched by its protected PDQ hash; the
match confirmed (which freezes the first capture), then captured {RUNS} times on demand. Each capture starts the
system's Chromium (about a second of it), loads the page and the picture through the SSRF-guarded route, and
keeps screenshot, HTML, MHTML, headers, redirect chain, the media with SHA-256 and PDQ, sealed, with a signed
manifest recorded in the audit chain. Baseline, in the same run: the same browser started, the page loaded and
screenshotted with plain Playwright, nothing else.

{table(["", "median", "p90"], rows)}
""",
    )


if __name__ == "__main__":
    main()
