"""The politeness parts on their own: token bucket, pauses, circuit breaker, Retry-After, Crawl-delay, and what
robots.txt answers mean (RFC 9309)."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest

from likeness.errors import RobotsDisallowed
from likeness.fetch.polite import Breaker, CircuitOpen, HostBuckets, Robots, RobotsFile, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _acquire_times(buckets: HostBuckets, clock: Clock, host: str, n: int) -> list[float]:
    """Run ``n`` acquisitions on a simulated clock: asyncio.sleep advances it instead of waiting."""
    times: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        clock.now += seconds

    async def run() -> None:
        real_sleep = asyncio.sleep
        asyncio.sleep = fake_sleep  # type: ignore[assignment]
        try:
            for _ in range(n):
                await buckets.acquire(host)
                times.append(clock.now)
        finally:
            asyncio.sleep = real_sleep

    asyncio.run(run())
    return times


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    times = _acquire_times(HostBuckets(rate=2.0, burst=3, clock=clock), clock, "a", 7)
    assert times[:3] == [0.0, 0.0, 0.0]
    assert times[3:] == pytest.approx([0.5, 1.0, 1.5, 2.0])


def test_pause_and_crawl_delay_hold_one_host_only() -> None:
    clock = Clock()
    buckets = HostBuckets(rate=100.0, burst=1, clock=clock)
    buckets.pause("a", 5.0)
    assert _acquire_times(buckets, clock, "b", 1) == [0.0]
    assert _acquire_times(buckets, clock, "a", 1) == [pytest.approx(5.0)]
    buckets.slow_down("c", 0.5)  # robots.txt Crawl-delay: 2
    start = clock.now
    assert [t - start for t in _acquire_times(buckets, clock, "c", 3)] == pytest.approx([0.0, 2.0, 4.0])


def test_breaker_opens_after_failures_and_lets_one_through_after_cooldown() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, cooldown_s=60, clock=clock)
    for _ in range(2):
        breaker.record("h", ok=False)
    breaker.check("h")
    breaker.record("h", ok=False)
    with pytest.raises(CircuitOpen, match="3 failures in a row"):
        breaker.check("h")
    breaker.check("other")
    clock.now = 61
    breaker.check("h")  # half-open: one try
    breaker.record("h", ok=False)
    with pytest.raises(CircuitOpen):
        breaker.check("h")
    clock.now = 200
    breaker.record("h", ok=True)
    breaker.check("h")


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("7") == 7.0
    now = time.time()
    assert retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30, abs=1)
    assert retry_after("soon") is None and retry_after(None) is None


ROBOTS = {
    "http://rules.test/robots.txt": RobotsFile(200, "User-agent: *\nDisallow: /private/\n"),
    "http://none.test/robots.txt": RobotsFile(404),
    "http://busy.test/robots.txt": RobotsFile(503, unreachable="HTTP 503"),
    "http://down.test/robots.txt": RobotsFile(0, unreachable="timed out (the limit is 30 s)"),
}


def _robots_verdict(robots: Robots, url: str) -> str:
    try:
        asyncio.run(robots.check(url))
    except RobotsDisallowed as exc:
        return str(exc)
    return "allowed"


def test_robots_answers_follow_rfc_9309_and_an_unreachable_file_says_so() -> None:
    asked: list[str] = []

    async def fetch(url: str) -> RobotsFile:
        asked.append(url)
        return ROBOTS[url]

    robots = Robots("likeness", fetch, HostBuckets(1.0, 1))
    assert _robots_verdict(robots, "http://rules.test/a.jpg") == "allowed"
    assert "disallowed by http://rules.test/robots.txt" in _robots_verdict(robots, "http://rules.test/private/a.jpg")
    assert _robots_verdict(robots, "http://none.test/private/a.jpg") == "allowed"  # 4xx: no rules
    busy = _robots_verdict(robots, "http://busy.test/a.jpg")
    assert "robots.txt unreachable (HTTP 503)" in busy and "staying out" in busy
    assert "robots.txt unreachable (timed out" in _robots_verdict(robots, "http://down.test/a.jpg")
    assert len(asked) == len(set(asked)) == 4  # read once per origin
