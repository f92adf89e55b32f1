"""The web pages' cost against the API answering the same question, in the same run.

    python -m bench.web

On the demo corpus (a subject, a protected picture, the generated folder scanned), in process over ASGI: the
review queue page against ``GET /v1/matches`` for the same matches; a match's page (which also reads its case,
notices and neighbours) against ``GET /v1/matches/{id}``; the face found, cut from its source and encoded, against
decoding that source alone. And the in-browser PDQ (web/static/pdq.js, in the system's Chromium) against the
``pdqhash`` package (Meta's C++) on the same pixels, decoding left out of both.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench.common import table, write_section

RUNS = 30


async def _median(call: Callable[[], Awaitable[object]]) -> float:
    await call()  # warm: templates compiled, indexes built
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _measure(app: object, token: str, match_id: int, location: str) -> list[list[object]]:
    import httpx

    from likeness.media import decode
    from likeness.web import create_site

    site = create_site(app)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=site)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", cookies={"likeness_session": token}
    ) as c:

        async def get(path: str, **kw: object) -> None:
            answer = await c.get(path, **kw)  # type: ignore[arg-type]
            assert answer.status_code == 200, (path, answer.status_code)

        pairs = [
            ("review queue page", lambda: get("/review"), "GET /v1/matches",
             lambda: get("/v1/matches", headers=headers)),
            ("a match's page", lambda: get(f"/review/matches/{match_id}"), "GET /v1/matches/{id}",
             lambda: get(f"/v1/matches/{match_id}", headers=headers)),
            ("face found (JPEG)", lambda: get(f"/review/matches/{match_id}/found.jpg"), "decoding its source",
             lambda: asyncio.to_thread(decode, Path(location).read_bytes(), app.settings.media)),  # type: ignore[attr-defined]
        ]  # fmt: skip
        rows = []
        for name, call, base_name, base in pairs:
            page_ms, base_ms = await _median(call), await _median(base)
            rows.append([name, f"{page_ms:.1f}", base_name, f"{base_ms:.1f}", f"{page_ms / base_ms:.2f}x"])
    site.state.checker.close()
    return rows


def _pdq_rows() -> list[list[object]]:
    """Hashing the same RGBA pixels in the page and in Python, median of RUNS each."""
    import base64

    import numpy as np
    from playwright.sync_api import sync_playwright
    from skimage import data

    from likeness.analyze import hashing
    from likeness.services.corpus import resize
    from likeness.web.render import HERE

    pictures = {"512x512": data.astronaut(), "1600x1600": resize(data.astronaut(), 3.125)}
    module = (HERE / "static" / "pdq.js").read_bytes()
    rows = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.route("http://bench.local/pdq.js", lambda r: r.fulfill(body=module, content_type="text/javascript"))
        page.route("http://bench.local/", lambda r: r.fulfill(body="<!doctype html><p>bench", content_type="text/html"))
        page.goto("http://bench.local/")
        for name, rgb in pictures.items():
            h, w = rgb.shape[:2]
            rgba = np.dstack([rgb, np.full((h, w), 255, np.uint8)])
            in_page = page.evaluate(
                """async ([b64, w, h, runs]) => {
                    const { pdqFromRGBA } = await import("http://bench.local/pdq.js");
                    const data = Uint8ClampedArray.from(atob(b64), (c) => c.charCodeAt(0));
                    pdqFromRGBA(data, w, h);
                    const times = [];
                    for (let i = 0; i < runs; i++) {
                        const t = performance.now(); pdqFromRGBA(data, w, h); times.push(performance.now() - t);
                    }
                    return times.sort((a, b) => a - b)[Math.floor(runs / 2)];
                }""",
                [base64.b64encode(rgba.tobytes()).decode(), w, h, RUNS],
            )
            hashing.pdq(rgb)
            python = []
            for _ in range(RUNS):
                started = time.perf_counter()
                hashing.pdq(rgb)
                python.append((time.perf_counter() - started) * 1000)
            base = statistics.median(python)
            rows.append([f"PDQ in the page, {name}", f"{in_page:.1f}", "pdqhash (C++)", f"{base:.1f}",
                         f"{in_page / base:.2f}x"])  # fmt: skip
        browser.close()
    return rows


def main() -> None:
    from likeness import accounts
    from likeness.services import corpus, hashes, review, scan, subjects
    from likeness.services.app import open_app
    from likeness.settings import AbuseSettings, Settings

    with tempfile.TemporaryDirectory() as tmp:
        made = corpus.build(Path(tmp) / "corpus")
        # the abuse controls' buckets would refuse a benchmark's burst; their cost is bench/api.py's to measure
        with open_app(Settings(home=Path(tmp) / "home", abuse=AbuseSettings(enabled=False))) as app:
            subjects.enroll(app, "Eileen", [subjects.Photo("r.jpg", made.reference.read_bytes())], actor="bench")
            hashes.add_files(app, "default", [subjects.Photo("p.png", made.protected.read_bytes())], actor="bench")
            scan.scan(app, [str(made.scan_dir)], actor="bench")
            found = review.list_matches(app, kind="face", limit=None)
            with app.store.transaction() as s:
                user = accounts.create_user(s, "bench", "reviewer", actor="bench")
                token = accounts.create_token(s, user.id, actor="bench").token
            rows = asyncio.run(_measure(app, token, found[0].id, found[0].location))
            count = len(review.list_matches(app, status="new", limit=None))
    rows += _pdq_rows()
    for row in rows:
        print(row, flush=True)
    write_section(
        "web",
        "Web pages against the API",
        f"""
The demo corpus ({count} matches in the queue), in process over ASGI (httpx), median of {RUNS} after one warm-up.
Each page is compared with the API call that answers the same question, in the same run; the face found with
decoding the file it is cut from (the cut, blur and JPEG encoding are what the page adds); the in-browser PDQ
(pdq.js in the system's Chromium, float32 emulated in JavaScript) with `pdqhash` (Meta's C++) on the same pixels,
decoding left out of both, median of {RUNS}.

{table(["page", "ms", "baseline", "ms", "page / baseline"], rows)}
""",
    )


if __name__ == "__main__":
    main()
