"""A platform simulator: a real HTTP server (aiohttp, in a thread) speaking CivitAI's, Reddit's and DeviantArt's
documented wire formats (../shared/fixtures/*/CONTRACT.md), with the faults crawlers must survive.

Payloads are built here from the contracts; nothing is copied from ../shared. Every request is logged with its
arrival time, so tests can check the crawler's rate limit from the server's side.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
from aiohttp import web
from PIL import Image

from tests import images


@dataclass
class Faults:
    status_every: int = 0  # every n-th API request answers ``status`` (503 or 429) with Retry-After
    status: int = 503
    retry_after: str = "1"
    truncate_every: int = 0  # every n-th media response promises more bytes than it sends
    repeat_last_item: bool = False  # each page starts with the previous page's last item
    empty_page: int | None = None  # this page (from 0) is empty but has a next cursor
    loop_at: int | None = None  # this page's next cursor points back to page 1
    robots: str = ""  # robots.txt body; empty: 404


@dataclass
class Platform:
    """``items`` ids, newest first; every ``face_every``-th id shows a face."""

    items: int = 60
    per_page: int = 20
    face_every: int = 5
    original: tuple[int, int] = (640, 800)
    thumb_width: int = 450
    faults: Faults = field(default_factory=Faults)
    log: list[tuple[float, str]] = field(default_factory=list)
    newest: int = 0  # set by ``grow``: ids above ``items`` posted since
    # what an item looks like and its original size; the defaults draw ``picture`` at ``original``
    render: Callable[[int, int, int, bool], bytes] | None = None
    size_of: Callable[[int], tuple[int, int]] | None = None

    def size(self, item: int) -> tuple[int, int]:
        return self.size_of(item) if self.size_of else self.original

    def draw(self, item: int, width: int, height: int) -> bytes:
        return (self.render or picture)(item, width, height, item % self.face_every == 0)

    def ids(self) -> list[int]:
        return list(range(self.items + self.newest, 0, -1))

    def grow(self, count: int) -> None:
        self.newest += count


def picture(item: int, width: int, height: int, face: bool) -> bytes:
    """Unique bytes per item: a face shot or a textured scene, with the item number drawn into a corner."""
    scenes = list(images.NO_FACE.values())
    pixels = images.astronaut_face_crop() if face else _scene(item % len(scenes))
    img = Image.fromarray(pixels).convert("RGB").resize((width, height))
    stamp = np.array(img)
    for bit in range(20):  # the item number as 20 black/white squares: no two items share bytes or PDQ
        stamp[:4, bit * 4 : bit * 4 + 4] = 255 if item >> bit & 1 else 0
    buf = io.BytesIO()
    Image.fromarray(stamp).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def created(item: int) -> str:
    """Later items were posted later: a minute apart from 2026-01-01."""
    return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=item)).isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=8)
def _scene(n: int) -> np.ndarray:
    return list(images.NO_FACE.values())[n]()


class Simulator:
    def __init__(self, platform: Platform) -> None:
        self.p = platform
        self.base = ""
        self._counts: dict[str, int] = {}

    def routes(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/images", self.civitai_images)
        app.router.add_get("/img/{uuid}/{params}/{name}", self.media)
        app.router.add_get("/r/{sub}/new.json", self.reddit)
        app.router.add_get("/rss.xml", self.rss)
        app.router.add_get("/robots.txt", self.robots)
        app.router.add_get("/page.html", self.page)
        app.router.add_get("/sitemap.xml", self.sitemap)
        app.router.add_get("/oembed", self.oembed)
        app.router.add_post("/oauth2/token", self.token)
        app.router.add_get("/api/v1/oauth2/browse/tags", self.browse_tags)
        return app

    def _count(self, route: str) -> int:
        self._counts[route] = self._counts.get(route, 0) + 1
        return self._counts[route]

    def _fault(self, route: str) -> web.Response | None:
        f = self.p.faults
        if f.status_every and self._count(route) % f.status_every == 0:
            return web.json_response({"error": "overloaded"}, status=f.status, headers={"Retry-After": f.retry_after})
        return None

    def _page_of(self, cursor: str | None) -> tuple[int, list[int], str | None]:
        ids, per = self.p.ids(), self.p.per_page
        number = int(cursor.split(":")[1]) if cursor else 0  # "feed:<page>:<first id>", opaque to the client
        chunk = ids[number * per : (number + 1) * per]
        if self.p.faults.repeat_last_item and number > 0:
            chunk = [ids[number * per - 1], *chunk]
        if self.p.faults.empty_page == number:
            chunk = []
        following = 1 if self.p.faults.loop_at == number else number + 1
        more = (number + 1) * per < len(ids)
        return number, chunk, f"feed:{following}:{ids[min(len(ids) - 1, following * per)]}" if more else None

    def _media_url(self, item: int, params: str) -> str:
        return f"{self.base}/img/{item:08x}-0000/{params}/{item}.jpeg"

    async def civitai_images(self, request: web.Request) -> web.Response:
        self.p.log.append((time.monotonic(), request.path_qs))
        fault = self._fault("api")
        if fault is not None:
            return fault
        _, chunk, cursor = self._page_of(request.query.get("cursor"))
        items: list[dict[str, Any]] = [
            {"id": i, "url": self._media_url(i, "original=true"), "width": self.p.size(i)[0],
             "height": self.p.size(i)[1], "type": "image",
             "nsfwLevel": "None", "browsingLevel": 1, "createdAt": created(i),
             "postId": i, "username": f"user{i % 7}", "hash": "U00000", "stats": {}, "meta": None}
            for i in chunk
        ]  # fmt: skip
        metadata = {"nextCursor": cursor, "nextPage": f"{self.base}/api/v1/images?cursor={cursor}"} if cursor else {}
        return web.json_response({"items": items, "metadata": metadata})

    async def media(self, request: web.Request) -> web.StreamResponse:
        self.p.log.append((time.monotonic(), request.path_qs))
        item = int(request.match_info["name"].split(".")[0])
        params = request.match_info["params"]
        w, h = self.p.size(item)
        if "width=" in params:
            width = int(params.split("width=")[1].split(",")[0])
            w, h = width, round(h * width / w)
        body = self.p.draw(item, w, h)
        if self.p.faults.truncate_every and self._count("media") % self.p.faults.truncate_every == 0:
            response = web.StreamResponse(headers={"Content-Type": "image/jpeg", "Content-Length": str(len(body))})
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            request.transport.close()  # type: ignore[union-attr]
            return response
        return web.Response(body=body, content_type="image/jpeg")

    async def reddit(self, request: web.Request) -> web.Response:
        self.p.log.append((time.monotonic(), request.path_qs))
        if request.query.get("raw_json") != "1":
            return web.json_response({"message": "raw_json=1 expected by this simulator"}, status=400)
        number = self._count("reddit")
        if self.p.faults.status_every and number % self.p.faults.status_every == 0:  # Reddit's throttle, as a 200
            return web.json_response({"message": "Too Many Requests", "error": 429})
        after = request.query.get("after")
        _, chunk, cursor = self._page_of(f"feed:{after[3:]}:0" if after else None)
        children = [{"kind": "t3", "data": self._post(i)} for i in chunk]
        headers = {"X-Ratelimit-Used": str(number), "X-Ratelimit-Remaining": "0.0" if number == 1 else "50.0",
                   "X-Ratelimit-Reset": "1"}  # fmt: skip
        listing = {"after": f"t3_{cursor.split(':')[1]}" if cursor else None, "before": None, "dist": len(chunk),
                   "children": children}  # fmt: skip
        return web.json_response({"kind": "Listing", "data": listing}, headers=headers)

    def _post(self, i: int) -> dict[str, Any]:
        w, h = self.p.original
        post: dict[str, Any] = {"name": f"t3_p{i}", "id": f"p{i}", "permalink": f"/r/sim/comments/p{i}/x/",
                                "created_utc": 1_700_000_000 + i, "over_18": i % 2 == 0, "subreddit": "sim",
                                "author": "someone", "title": f"post {i}"}  # fmt: skip
        if i % 3 == 0:  # a gallery of two
            ids = [f"g{i}a", f"g{i}b"]
            urls = {m: self._media_url(500_000 + 2 * i + n, "original=true") for n, m in enumerate(ids)}
            post |= {"is_gallery": True, "url": f"https://www.reddit.com/gallery/p{i}",
                     "gallery_data": {"items": [{"media_id": m, "id": n} for n, m in enumerate(ids)]},
                     "media_metadata": {m: {"status": "valid", "e": "Image", "m": "image/jpg",
                                            "s": {"x": w, "y": h, "u": urls[m]}} for m in ids}}  # fmt: skip
        else:
            post |= {"post_hint": "image", "url": self._media_url(i, "original=true").replace("&", "&amp;"),
                     "preview": {"images": [{"source": {"url": self._media_url(i, "original=true"), "width": w,
                                 "height": h}, "resolutions": [{"url": self._media_url(i, "width=320"),
                                 "width": 320, "height": 400}]}]}}  # fmt: skip
        return post

    async def rss(self, request: web.Request) -> web.Response:
        self.p.log.append((time.monotonic(), request.path_qs))
        offset = int(request.query.get("offset", "0"))
        ids = self.p.ids()[offset : offset + self.p.per_page]
        w, h = self.p.original
        entries = "".join(
            f"""<item><title>work {i}</title><link>https://www.deviantart.com/someone/art/Work-{i}</link>
            <guid isPermaLink="true">https://www.deviantart.com/someone/art/Work-{i}</guid>
            <pubDate>Thu, 12 Aug 2021 15:14:18 PDT</pubDate><media:rating>nonadult</media:rating>
            <media:thumbnail url="{self._media_url(i, "width=150")}" height="150" width="150"/>
            <media:thumbnail url="{self._media_url(i, "width=300")}" height="300" width="300"/>
            <media:content url="{self._media_url(i, "original=true")}" height="{h}" width="{w}" medium="image"/>
            </item>"""
            for i in ids
        )
        more = offset + self.p.per_page < len(self.p.ids())
        nxt = f'<atom:link rel="next" href="{self.base}/rss.xml?type=deviation&amp;offset={offset + self.p.per_page}"/>'
        body = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">
<channel><title>DeviantArt: sim</title>{nxt if more else ""}{entries}</channel></rss>"""
        return web.Response(text=body, content_type="application/rss+xml")

    async def robots(self, request: web.Request) -> web.Response:
        self.p.log.append((time.monotonic(), request.path_qs))
        if not self.p.faults.robots:
            return web.Response(status=404)
        return web.Response(text=self.p.faults.robots)

    async def page(self, request: web.Request) -> web.Response:
        self.p.log.append((time.monotonic(), request.path_qs))
        a, b, c = (self._media_url(i, "original=true") for i in (101, 102, 103))
        body = f"""<html><head><meta property="og:image" content="{a}"></head><body>
        <img src="{b}"><img srcset="/tiny.jpg 100w, {c} 800w" src="/tiny.jpg"><img src="data:image/png;base64,AA">
        <img src="{b}"></body></html>"""
        return web.Response(text=body, content_type="text/html")

    async def oembed(self, request: web.Request) -> web.Response:
        """DeviantArt's oEmbed (CONTRACT.md: width and height as strings, ``safety``, ``pubdate``)."""
        self.p.log.append((time.monotonic(), request.path_qs))
        item = int(request.query["url"].rsplit("-", 1)[1])
        w, h = self.p.size(item)
        return web.json_response({"version": "1.0", "type": "photo", "title": f"work {item}",
                                  "url": self._media_url(item, "original=true"), "author_name": "someone",
                                  "author_url": "https://www.deviantart.com/someone", "provider_name": "DeviantArt",
                                  "safety": "adult", "pubdate": "2020-07-13T05:12:40-07:00", "width": str(w),
                                  "height": str(h), "thumbnail_url": self._media_url(item, "width=300")})  # fmt: skip

    async def token(self, request: web.Request) -> web.Response:
        """DeviantArt's client-credentials grant."""
        self.p.log.append((time.monotonic(), request.path_qs))
        form = await request.post()
        if form.get("grant_type") != "client_credentials" or form.get("client_secret") != "s3cret":
            return web.json_response({"error": "invalid_client", "status": "error"}, status=401)
        return web.json_response({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})

    async def browse_tags(self, request: web.Request) -> web.Response:
        """/browse/tags: deviation objects, ``has_more`` and ``next_cursor`` (CONTRACT.md)."""
        self.p.log.append((time.monotonic(), request.path_qs))
        if request.headers.get("Authorization") != "Bearer tok":
            return web.json_response({"error": "invalid_token", "status": "error"}, status=401)
        _, chunk, cursor = self._page_of(request.query.get("cursor"))
        results = [self._deviation(i) for i in chunk]
        return web.json_response({"has_more": cursor is not None, "next_cursor": cursor, "next_offset": None,
                                  "results": results})  # fmt: skip

    def _deviation(self, i: int) -> dict[str, Any]:
        w, h = self.p.size(i)
        return {
            "deviationid": f"{i:08X}-0000-0000-0000-000000000000",
            "url": f"https://www.deviantart.com/someone/art/Work-{i}",
            "title": f"work {i}",
            "is_deleted": i == 2,
            "published_time": str(1_700_000_000 + i),
            "is_mature": i % 2 == 0,
            "author": {"username": "someone"},
            "preview": {"src": self._media_url(i, "width=300"), "width": 300, "height": 400},
            "content": {"src": self._media_url(i, "original=true"), "width": w, "height": h},
        }

    async def sitemap(self, request: web.Request) -> web.Response:
        self.p.log.append((time.monotonic(), request.path_qs))
        body = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>{self.base}/page.html</loc></url></urlset>"""
        return web.Response(text=body, content_type="application/xml")


@contextmanager
def serve(platform: Platform) -> Iterator[str]:
    sim = Simulator(platform)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(sim.routes(), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sim.base = f"http://127.0.0.1:{port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield sim.base
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(runner.cleanup())
        loop.close()


def max_in_window(log: list[tuple[float, str]], window_s: float) -> int:
    """The most requests the server saw within any ``window_s``."""
    times = sorted(t for t, _ in log)
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] > window_s:
            start += 1
        most = max(most, end - start + 1)
    return most
