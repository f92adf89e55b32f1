"""Politeness per host: a token bucket, pauses a server asked for, a circuit breaker and robots.txt.

The fetcher speaks to ``Politeness``: ``LocalPoliteness`` here keeps the state in this process (tests, tools run
without a store), ``fetch/shared.py`` keeps it in PostgreSQL so that every crawling process spends from the same
bucket. The local parts run on the fetcher's one event loop, so no locks: nothing awaits between a check and its
update. Hand-written rather than a library: aiolimiter has no per-host pause for Retry-After, and pybreaker is
blocking.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib import robotparser
from urllib.parse import urlsplit

from likeness.errors import CircuitOpen, RobotsDisallowed
from likeness.fetch.guard import redact


class HostBuckets:
    """At most ``burst`` requests at once per host, refilled at ``rate`` a second; ``pause`` holds a host back."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self._tokens: dict[str, tuple[float, float]] = {}  # host -> (tokens, when counted)
        self._not_before: dict[str, float] = {}
        self._rates: dict[str, float] = {}  # hosts slower than ``rate`` (robots.txt Crawl-delay)

    def slow_down(self, host: str, rate: float) -> None:
        self._rates[host] = min(rate, self._rates.get(host, self.rate))

    def pause(self, host: str, seconds: float) -> None:
        self._not_before[host] = max(self._not_before.get(host, 0.0), self.clock() + seconds)

    async def acquire(self, host: str) -> None:
        rate = self._rates.get(host, self.rate)
        while True:
            now = self.clock()
            held = self._not_before.get(host, 0.0) - now
            if held > 0:
                await asyncio.sleep(held)
                continue
            tokens, counted = self._tokens.get(host, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - counted) * rate)
            if tokens >= 1:
                self._tokens[host] = (tokens - 1, now)
                return
            self._tokens[host] = (tokens, now)
            await asyncio.sleep((1 - tokens) / rate)


class Breaker:
    """After ``failures`` transient failures in a row a host is left alone for ``cooldown_s``; then one request
    is let through, and one more failure opens the circuit again."""

    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.cooldown_s, self.clock = failures, cooldown_s, clock
        self._failed: dict[str, int] = {}
        self._open_until: dict[str, float] = {}

    def check(self, host: str) -> None:
        wait = self._open_until.get(host, 0.0) - self.clock()
        if wait > 0:
            raise CircuitOpen(f"{host}: {self._failed[host]} failures in a row; left alone for {wait:.0f} s")

    def record(self, host: str, ok: bool) -> None:
        if ok:
            self._failed.pop(host, None)
            return
        self._failed[host] = self._failed.get(host, 0) + 1
        if self._failed[host] >= self.failures:
            self._open_until[host] = self.clock() + self.cooldown_s


class SlowsDown(Protocol):
    def slow_down(self, host: str, rate: float) -> None:
        """At most ``rate`` requests a second to ``host`` from now on (robots.txt Crawl-delay)."""


class Politeness(SlowsDown, Protocol):
    """What the fetcher asks before and tells after each request. ``slow_down`` stays synchronous and local: every
    process reads the host's robots.txt for itself, so all of them pass the same slower rate."""

    async def check(self, host: str) -> None:
        """Raise ``CircuitOpen`` when the host is being left alone (may answer from what was last seen)."""

    async def acquire(self, host: str) -> None:
        """Wait out any pause, then for a token; raise ``CircuitOpen`` when the circuit is open."""

    async def pause(self, host: str, seconds: float) -> None:
        """No request to ``host`` for ``seconds`` (a Retry-After, an exhausted rate-limit window)."""

    async def record(self, host: str, ok: bool) -> None:
        """A request's outcome, for the breaker: ``ok=False`` for a transient failure."""

    async def aclose(self) -> None:
        """Release what the state holds (a database connection)."""


class LocalPoliteness:
    """``HostBuckets`` and ``Breaker`` of this process only."""

    def __init__(self, buckets: HostBuckets, breaker: Breaker) -> None:
        self.buckets, self.breaker = buckets, breaker

    def slow_down(self, host: str, rate: float) -> None:
        self.buckets.slow_down(host, rate)

    async def check(self, host: str) -> None:
        self.breaker.check(host)

    async def acquire(self, host: str) -> None:
        await self.buckets.acquire(host)

    async def pause(self, host: str, seconds: float) -> None:
        self.buckets.pause(host, seconds)

    async def record(self, host: str, ok: bool) -> None:
        self.breaker.record(host, ok)

    async def aclose(self) -> None:
        return None


@dataclass(frozen=True)
class RobotsFile:
    """What fetching a robots.txt gave: an HTTP status and body, or status 0 and why it could not be had."""

    status: int
    body: str = ""
    unreachable: str = ""  # for people: "HTTP 503", "timed out after 30 s", "connection refused", ...


RobotsFetch = Callable[[str], Awaitable[RobotsFile]]


class Robots:
    """robots.txt per origin, read once. RFC 9309 §2.3.1: a 2xx is the rules, a 4xx means no rules, and a file
    that is unreachable (5xx, a timeout, a refused connection) means stay out; the message then says so, so a
    host that is down never reads as one that forbids us. A name that does not resolve or an address the guard
    refuses is raised by ``fetch`` as what it is, and nothing is remembered for the origin."""

    def __init__(self, user_agent: str, fetch: RobotsFetch, buckets: SlowsDown) -> None:
        self.user_agent, self.fetch, self.buckets = user_agent, fetch, buckets
        self._rules: dict[str, tuple[robotparser.RobotFileParser, str]] = {}  # origin -> (rules, unreachable)

    async def check(self, url: str) -> None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._rules:
            self._rules[origin] = await self._load(origin, parts.hostname or "")
        rules, unreachable = self._rules[origin]
        if rules.can_fetch(self.user_agent, url):
            return
        if unreachable:
            raise RobotsDisallowed(
                f"{redact(url)}: robots.txt unreachable ({unreachable}); staying out of {redact(origin)} (RFC 9309)"
            )
        raise RobotsDisallowed(f"{redact(url)}: disallowed by {redact(origin)}/robots.txt")

    async def _load(self, origin: str, host: str) -> tuple[robotparser.RobotFileParser, str]:
        answer = await self.fetch(f"{origin}/robots.txt")
        rules, unreachable = robotparser.RobotFileParser(), ""
        if 200 <= answer.status < 300:
            rules.parse(answer.body.splitlines())
        elif 400 <= answer.status < 500:
            rules.parse([])
        else:
            unreachable = answer.unreachable or f"HTTP {answer.status}"
            rules.parse(["User-agent: *", "Disallow: /"])
        delay = rules.crawl_delay(self.user_agent)
        if delay:
            self.buckets.slow_down(host, 1 / float(delay))
        return rules, unreachable


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))
