"""Crawls started through the API run in a thread of this process, one per source at a time.

A crawl is long (pages, downloads, analysis) and must not hold a request open. The checkpoint in PostgreSQL is
what persists: a crawl cut short by a restart resumes from it the next time it is started. (The coming task queue,
procrastinate on the same database, replaces these threads.)"""

from __future__ import annotations

import logging
import threading

from likeness.errors import Conflict, InvalidInput
from likeness.services import crawl
from likeness.services.app import App
from likeness.sources.base import Source

log = logging.getLogger(__name__)


class Crawls:
    def __init__(self) -> None:
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def running(self) -> set[str]:
        with self._lock:
            return {name for name, t in self._running.items() if t.is_alive()}

    def start(self, app: App, kind: str, query: str | None, max_pages: int, *, actor: str) -> str:
        source = _source(app, kind, query)
        with self._lock:
            current = self._running.get(source.name)
            if current is not None and current.is_alive():
                raise Conflict(f"a crawl of {source.name} is running")
            thread = threading.Thread(
                target=_run, args=(app, source, max_pages, actor), name=f"crawl {source.name}", daemon=True
            )
            self._running[source.name] = thread
            thread.start()
        return source.name


def _source(app: App, kind: str, query: str | None) -> Source:
    if kind == "civitai":
        return crawl.civitai(app)
    if kind == "reddit":
        if not query:
            raise InvalidInput("a reddit crawl needs the subreddit (query)")
        return crawl.reddit(app, query)
    if kind == "deviantart":
        return crawl.deviantart(app, query=query)
    raise InvalidInput(f"unknown source {kind!r}")


def _run(app: App, source: Source, max_pages: int, actor: str) -> None:
    try:
        summary = crawl.crawl(app, source, max_pages=max_pages, actor=actor)
    except Exception:  # a thread's failure is nobody's response: it goes to the log and the checkpoint's error
        log.exception("crawl of %s failed", source.name)
        return
    log.info("crawl of %s: %d pages, stopped: %s", source.name, summary.pages, summary.stopped)
