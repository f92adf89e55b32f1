"""``crawl``: walk a platform listing page by page, newest first, and scan what is new.

A run first retries the items that failed last time, then walks from the newest item down until it meets an
item it has dealt with (the head), then, until the first full crawl has reached the end, goes on from the
saved cursor (the backfill). Each item is recorded in its media's transaction; the cursor moves on only once
every item of its page is recorded. Guards against platform cursor bugs: a cursor seen twice in a run ends
the walk (page loops), empty pages with a cursor are followed a bounded number of times, and items repeated
across pages are scanned once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from likeness.catalogue import crawls
from likeness.errors import BlockedAddress, ConfigurationError, InvalidInput, LikenessError, Throttled, UnsafeUrl
from likeness.fetch import Fetcher, redact
from likeness.log import get_logger
from likeness.services import fetching
from likeness.services.app import App
from likeness.services.scan import Run, ScanSummary
from likeness.sources.base import Item, MediaRef, Page, Source
from likeness.sources.civitai import CivitaiListing, search_tags
from likeness.sources.deviantart import DeviantartRss, DeviantartTags
from likeness.sources.reddit import RedditListing
from likeness.sources.urls import UrlList

log = get_logger(__name__)


@dataclass
class CrawlSummary:
    source: str
    pages: int = 0
    listed: int = 0
    seen: int = 0  # dealt with by an earlier run or page
    skipped: int = 0  # pre-filtered from the listing: too small, videos off, not a picture
    retried: int = 0
    rejected: list[str] = field(default_factory=list)  # malformed entries in a page
    stopped: str = ""
    error: str | None = None
    requests: int = 0
    bytes: int = 0
    elapsed_s: float = 0.0
    scan: ScanSummary = field(default_factory=ScanSummary)


CrawlProgress = Callable[[CrawlSummary], None]


def crawl(
    app: App,
    source: Source,
    *,
    actor: str,
    max_pages: int | None = None,
    since: datetime | None = None,
    progress: CrawlProgress | None = None,
) -> CrawlSummary:
    summary, started = CrawlSummary(source.name), time.perf_counter()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)  # platforms give UTC times
    with ExitStack() as stack:
        fetcher = stack.enter_context(fetching.fetcher(app.settings, app.store))  # politeness shared by all
        run = Run(app.store, app.settings, summary.scan, stack, fetcher, actor=actor, indexes=app.indexes())
        walk = _Walk(app, source, fetcher, run, summary, max_pages, since, progress, started)
        with app.store.transaction() as session:
            state = crawls.checkpoint(session, source.name)
        try:
            walk.retry_failed()
            if state.backfilled or state.cursor is not None:
                walk.walk(None, backfill=False)
            if not state.backfilled and not walk.out_of_pages():  # the head pass ends at seen items: go on
                walk.walk(state.cursor, backfill=True)
        except LikenessError as exc:  # the cursor stays where the last complete page left it
            summary.error, summary.stopped = str(exc), "error"
            log.warning("crawl.stopped", source=source.name, error=str(exc))
        finally:
            walk.run.drain(0)
            with app.store.transaction() as session:
                crawls.finish(session, source.name, summary.error)
            walk.tally()
    return summary


@dataclass
class _Walk:
    app: App
    source: Source
    fetcher: Fetcher
    run: Run
    summary: CrawlSummary
    max_pages: int | None = None
    since: datetime | None = None
    progress: CrawlProgress | None = None
    started: float = 0.0
    keys: set[str] = field(default_factory=set)  # items met in this run

    def walk(self, cursor: str | None, backfill: bool) -> None:
        cursors: set[str | None] = {cursor}
        empty = 0
        while not self.out_of_pages():
            page = self._page(cursor)
            seen = self._scan(page)
            self.run.drain(0)
            with self.app.store.transaction() as session:
                crawls.advance(session, self.source.name, page.cursor, backfill=backfill, items=len(page.items))
            self.tally()
            empty = 0 if page.items else empty + 1
            reason = self._stop_reason(page, seen, backfill, empty, page.cursor in cursors)
            if reason:
                self.summary.stopped = reason
                return
            cursor = page.cursor
            cursors.add(cursor)

    def _stop_reason(self, page: Page, seen: int, backfill: bool, empty: int, looped: bool) -> str:
        if page.cursor is None:
            return "end of listing"
        if not backfill and seen:
            return "reached content already crawled"
        if any(self._too_old(i) for i in page.items):  # listings are newest first: the rest is older still
            return f"reached items older than {self.since.isoformat() if self.since else ''}"
        if looped:
            log.warning("crawl.cursor_loop", source=self.source.name, cursor=page.cursor)
            return f"cursor loop: {page.cursor} came back"
        if empty >= self.app.settings.crawl.max_empty_pages:
            return f"{empty} empty pages in a row"
        return ""

    def out_of_pages(self) -> bool:
        if self.max_pages is not None and self.summary.pages >= self.max_pages:
            self.summary.stopped = f"max pages ({self.max_pages})"
            return True
        return False

    def _page(self, cursor: str | None) -> Page:
        """A page, asked again after a throttled answer (at most three times)."""
        for attempt in range(3):
            try:
                page = self.source.page(self.fetcher, cursor)
                break
            except Throttled as exc:
                if attempt == 2:
                    raise
                time.sleep(min(exc.retry_after, self.app.settings.crawl.throttle_wait_s))
        self.summary.pages += 1
        page = self._bounded(page)
        self.summary.rejected += page.rejected
        for reason in page.rejected:
            log.warning("crawl.rejected_entry", source=self.source.name, reason=reason)
        return page

    def _bounded(self, page: Page) -> Page:
        """A page with more items than ``crawl.max_items_per_page`` keeps the first ones, with a warning: one
        hostile page must not make a crawl that fails on it every time."""
        limit = self.app.settings.crawl.max_items_per_page
        if len(page.items) <= limit:
            return page
        note = f"page has {len(page.items)} items; only the first {limit} are taken (crawl.max_items_per_page)"
        return replace(page, items=page.items[:limit], rejected=[*page.rejected, note])

    def _scan(self, page: Page) -> int:
        """Fetch the page's new items together, then analyse each; returns how many were seen before."""
        unique = list({item.key: item for item in page.items}.values())
        with self.app.store.transaction() as session:
            done = crawls.dealt_with(session, self.source.name, [i.key for i in unique])
        fresh = [i for i in unique if i.key not in done and i.key not in self.keys and not self._too_old(i)]
        self.keys.update(i.key for i in unique)
        self.summary.listed += len(page.items)
        seen = len(page.items) - len(fresh)
        self.summary.seen += seen
        self._submit([self._ref(item) for item in fresh if not self._skipped(item)])
        return seen

    def _submit(self, refs: list[MediaRef]) -> None:
        for n, data in self.fetcher.get_many([r.location for r in refs]):
            self.run.submit(refs[n], data)

    def _too_old(self, item: Item) -> bool:
        return self.since is not None and item.created is not None and item.created < self.since

    def _ref(self, item: Item) -> MediaRef:
        meta = {"kind": item.kind, "created": item.created.isoformat() if item.created else None, "nsfw": item.nsfw,
                "width": item.width, "height": item.height, **item.extra}  # fmt: skip
        ref = MediaRef(item.url, item.page_url, self.source.name, item.key, meta=meta)
        if self.app.settings.crawl.two_pass and item.kind == "image" and item.thumb_url not in (None, item.url):
            return replace(ref, location=item.thumb_url, upgrade_url=item.url)
        return ref

    def _skipped(self, item: Item) -> bool:
        settings = self.app.settings.crawl
        sides = [s for s in (item.width, item.height) if s]
        reason = (
            f"URL longer than {settings.max_url_length} characters"
            if max(len(item.url), len(item.thumb_url or "")) > settings.max_url_length
            else self._unsafe(item) or "videos are turned off (LIKENESS_CRAWL__VIDEOS)"
            if item.kind == "video" and not settings.videos
            else f"not a picture or video ({item.kind})"
            if item.kind not in ("image", "video")
            else f"under {settings.min_side_px} px"
            if sides and min(sides) < settings.min_side_px
            else None
        )
        if reason is None:
            return False
        with self.app.store.transaction() as session:
            crawls.record(
                session, self.source.name, item.key, "skipped", redact(item.url), page_url=item.page_url, error=reason
            )
        self.summary.skipped += 1
        return True

    def _unsafe(self, item: Item) -> str | None:
        """What the SSRF guard says of the item's URLs before anything is stored or fetched (a platform is as
        untrusted as a user: no local paths, other schemes, credentials or private addresses)."""
        for url in (item.url, item.thumb_url):
            try:
                if url is not None:
                    self.fetcher.guard(url)
            except (UnsafeUrl, BlockedAddress) as exc:
                return str(exc)
        return None

    def retry_failed(self) -> None:
        with self.app.store.transaction() as session:
            failed = crawls.failed(session, self.source.name)
        self._submit([MediaRef(url, page_url, self.source.name, key) for key, url, page_url in failed])
        self.summary.retried += len(failed)
        self.keys.update(key for key, _, _ in failed)

    def tally(self) -> None:
        self.summary.requests, self.summary.bytes = self.fetcher.stats.requests, self.fetcher.stats.bytes
        self.summary.elapsed_s = time.perf_counter() - self.started
        if self.progress:
            self.progress(self.summary)


def civitai(app: App, endpoint: str = "images", **filters: str | None) -> Source:
    """/images, or /models and their version images (``endpoint="models"``), with the filters given."""
    settings = app.settings.crawl
    key = settings.civitai_api_key.get_secret_value() if settings.civitai_api_key else None
    given = {k: v for k, v in filters.items() if v}
    return CivitaiListing(settings.civitai_url, endpoint, given, key, settings.thumb_width)


def civitai_tags(app: App, query: str) -> list[str]:
    with fetching.fetcher(app.settings, app.store) as fetcher:
        return search_tags(fetcher, app.settings.crawl.civitai_url, query)


def reddit(app: App, subreddit: str, listing: str = "new", period: str | None = None) -> Source:
    return RedditListing(app.settings.crawl.reddit_url, subreddit, listing, period)


def deviantart(app: App, query: str | None = None, tag: str | None = None) -> Source:
    """A tag through the OAuth2 API (credentials needed), or an RSS search."""
    settings = app.settings.crawl
    if tag is not None:
        if not (settings.deviantart_client_id and settings.deviantart_client_secret):
            raise ConfigurationError(
                "a DeviantArt tag is read through the API, which needs LIKENESS_CRAWL__DEVIANTART_CLIENT_ID and "
                "LIKENESS_CRAWL__DEVIANTART_CLIENT_SECRET (a query uses RSS and needs none)"
            )
        secret = settings.deviantart_client_secret.get_secret_value()
        return DeviantartTags(settings.deviantart_api_url, tag, settings.deviantart_client_id, secret)
    if not query:
        raise InvalidInput("give a query (RSS search) or a tag (API)")
    return DeviantartRss(settings.deviantart_rss_url, query)


def url_list(app: App, path: Path) -> Source:
    return UrlList(path, oembed_base=app.settings.crawl.deviantart_rss_url)


def status(app: App) -> list[crawls.Checkpoint]:
    with app.store.transaction() as session:
        return crawls.checkpoints(session)
