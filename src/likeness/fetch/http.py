"""The one HTTP seam: an aiohttp session on a background event loop, behind blocking calls.

Every request passes, in order: the SSRF guard (redirect hops included; names are judged again, address by
address, when aiohttp resolves them), the host's circuit breaker, robots.txt, the host's token bucket. 429 and 5xx
are retried with exponential backoff (tenacity), never sooner than the server's Retry-After, which also pauses
the host for every other request. Bodies are capped while streaming; media must be served as an image or video.
Failures say what happened: a name that does not resolve is ``DnsFailure``, a refused connection or a timeout a
``TransientFetchError`` saying so; every URL in a message goes through ``redact``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from tenacity import RetryCallState, retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from likeness.errors import (
    BlockedAddress,
    CircuitOpen,
    DnsFailure,
    FetchError,
    LikenessError,
    MalformedPayload,
    TooLarge,
    TransientFetchError,
    UnsafeUrl,
)
from likeness.fetch.guard import Guard, PublicOnlyResolver, redact
from likeness.fetch.polite import Breaker, HostBuckets, LocalPoliteness, Politeness, Robots, RobotsFile, retry_after
from likeness.settings import FetchSettings

T = TypeVar("T")
# A scheme of two letters or more (one letter is a Windows drive) then ":", or a scheme-relative "//".
_MEDIA_TYPES = ("image/", "video/", "application/octet-stream", "binary/octet-stream")


@dataclass
class FetchStats:
    requests: int = 0
    bytes: int = 0
    by_host: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes


class Fetcher:
    """``guard`` vets every URL, redirect hops included, before a connection is made (by default the SSRF guard
    of ``settings.allow_private_networks``; tests pass one that also lets their own server through). Whatever the
    guard, every address a name resolves to is judged by that SSRF guard; ``resolver`` is where names are resolved
    (the system's resolver by default; tests pass a ``StaticResolver``). ``politeness`` holds the buckets, pauses
    and breakers (this process's own by default; services pass the store's shared one, fetch/shared.py)."""

    def __init__(
        self,
        settings: FetchSettings,
        max_bytes: int,
        guard: Callable[[str], object] | None = None,
        resolver: AbstractResolver | None = None,
        politeness: Politeness | None = None,
    ) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self.ssrf = Guard(settings.allow_private_networks)
        self.guard = guard or self.ssrf.check_url
        self._resolver = resolver
        self.stats = FetchStats()
        self.polite = politeness or LocalPoliteness(
            HostBuckets(settings.rate_per_host, settings.burst_per_host),
            Breaker(settings.breaker_failures, settings.breaker_cooldown_s),
        )
        self.robots = Robots(settings.user_agent, self._robots_file, self.polite) if settings.respect_robots else None
        self._backoff = wait_exponential(multiplier=settings.backoff_s, max=settings.max_backoff_s)
        self._with_retries = retry(
            retry=retry_if_exception_type(TransientFetchError),
            stop=stop_after_attempt(settings.retries),
            wait=self._wait,
            reraise=True,
        )(self._request)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="likeness-fetch", daemon=True)
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    def __enter__(self) -> Fetcher:
        self._thread.start()
        self._session = self._run(self._open())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            self._run(self._session.close())
        if self._thread.is_alive():
            self._run(self.polite.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> bytes:
        """A picture or video."""
        return self._run(self._media(url, headers))

    def get_many(self, urls: list[str]) -> Iterator[tuple[int, bytes | LikenessError]]:
        """Pictures or videos, ``concurrency`` at a time, as (index, bytes or the failure) in the order they
        arrive, so that the caller works on the first while the rest download."""
        futures = {
            asyncio.run_coroutine_threadsafe(self._media_or_error(url), self._loop): n for n, url in enumerate(urls)
        }
        for future in as_completed(futures):
            yield futures[future], future.result()

    def get_text(self, url: str, headers: Mapping[str, str] | None = None) -> str:
        return self._run(self._with_retries(url, headers)).body.decode("utf-8", errors="replace")

    def get_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any:
        body = self._run(self._with_retries(url, headers)).body
        try:
            return json.loads(body)
        except ValueError as exc:
            raise MalformedPayload(f"{redact(url)}: not JSON ({exc}); starts {body[:80]!r}") from exc

    def post_form(self, url: str, form: Mapping[str, str]) -> Any:
        """An OAuth token request: not retried, not rate-limited beyond the host's bucket."""
        return self._run(self._post(url, form))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _open(self) -> aiohttp.ClientSession:
        resolver = PublicOnlyResolver(self.ssrf, self._resolver)
        connector = aiohttp.TCPConnector(resolver=resolver, limit_per_host=self.settings.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": self.settings.user_agent}
        )

    async def _media_or_error(self, url: str) -> bytes | LikenessError:
        try:
            return await self._media(url, None)
        except LikenessError as exc:
            return exc

    async def _media(self, url: str, headers: Mapping[str, str] | None) -> bytes:
        response = await self._with_retries(url, headers)
        kind = response.headers.get("Content-Type", "").lower()
        if kind and not kind.startswith(_MEDIA_TYPES):
            raise FetchError(f"{redact(url)}: served as {kind.split(';')[0]}, not a picture or video")
        return response.body

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return max(self._backoff(state), getattr(exc, "retry_after", None) or 0.0)

    async def _request(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        assert self._session is not None and self._slots is not None
        via = None
        for _ in range(self.settings.max_redirects + 1):
            await self._slots.acquire()  # a slot before a token: tokens taken while queueing would bunch requests
            host = ""
            try:
                host = await self._admit(url, via=via)
                async with self._session.get(url, allow_redirects=False, headers=headers) as resp:
                    if hop := _redirect(url, resp):
                        url, via = hop, url
                        continue
                    await self._throttle(host, resp)
                    return Response(url, resp.status, resp.headers, await self._body(url, resp))
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise await self._failed(host, url, exc) from exc
            finally:
                self._slots.release()
        raise FetchError(f"{redact(url)}: more than {self.settings.max_redirects} redirects")

    async def _admit(self, url: str, robots: bool = True, via: str | None = None) -> str:
        """The checks before a request; returns the host. ``via``: the URL that redirected here."""
        try:
            self.guard(url)
        except (UnsafeUrl, BlockedAddress) as exc:
            if via is None:
                raise
            raise type(exc)(f"{redact(via)} redirects to {exc}") from exc
        host = urlsplit(url).hostname or ""
        await self.polite.check(host)
        if robots and self.robots is not None:
            await self.robots.check(url)
        await self.polite.acquire(host)
        self.stats.requests += 1
        self.stats.by_host[host] = self.stats.by_host.get(host, 0) + 1
        return host

    async def _failed(self, host: str, url: str, exc: BaseException) -> LikenessError:
        """The error to raise for a failed request; the host's breaker counts it unless the name did not resolve
        (a cooldown cannot fix that, and every later item should still say "dns")."""
        failure = _failure(url, exc, self.settings.timeout_s)
        if host and not isinstance(failure, DnsFailure | BlockedAddress):
            await self.polite.record(host, ok=False)
        return failure

    async def _throttle(self, host: str, resp: aiohttp.ClientResponse) -> None:
        """Pause the host as the server asks: Retry-After on 429/503, and an exhausted X-Ratelimit window."""
        wait = retry_after(resp.headers.get("Retry-After")) if resp.status in (429, 503) else None
        remaining, reset = resp.headers.get("X-Ratelimit-Remaining"), resp.headers.get("X-Ratelimit-Reset")
        if remaining is not None and reset is not None and _number(remaining) < 1:
            wait = max(wait or 0.0, _number(reset))
        shown = redact(str(resp.url))
        if wait is not None and wait > self.settings.max_retry_after_s:
            raise FetchError(f"{shown}: the server asks to wait {wait:.0f} s; over max_retry_after_s")
        if wait:
            await self.polite.pause(host, wait)
        if resp.status == 429 or resp.status >= 500:
            await self.polite.record(host, ok=False)
            raise TransientFetchError(f"{shown}: HTTP {resp.status}", retry_after=wait)
        await self.polite.record(host, ok=True)
        if resp.status != 200:
            raise FetchError(f"{shown}: HTTP {resp.status}")

    async def _body(self, url: str, resp: aiohttp.ClientResponse) -> bytes:
        if (resp.content_length or 0) > self.max_bytes:
            raise TooLarge(f"{redact(url)}: {resp.content_length} bytes is over the {self.max_bytes}-byte limit")
        body = bytearray()
        async for chunk in resp.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > self.max_bytes:
                raise TooLarge(f"{redact(url)}: body is over the {self.max_bytes}-byte limit")
        self.stats.bytes += len(body)
        return bytes(body)

    async def _robots_file(self, url: str) -> RobotsFile:
        """A robots.txt, redirects followed through the guard. What keeps the file from us at its own origin (a
        name that does not resolve, a refused address, an open circuit) is raised as what it is; anything else
        (a 5xx, a timeout, a refused connection, a bad redirect) makes the file unreachable, with the reason."""
        assert self._session is not None
        origin, via = url, None
        try:
            for _ in range(self.settings.max_redirects + 1):
                await self._admit(url, robots=False, via=via)
                async with self._session.get(url, allow_redirects=False) as resp:
                    if hop := _redirect(url, resp):
                        url, via = hop, url
                        continue
                    if resp.status >= 500 or resp.status < 200:
                        return RobotsFile(resp.status, unreachable=f"HTTP {resp.status}")
                    body = await resp.content.read(500_000)  # RFC 9309: at least 500 KiB must be read
                    return RobotsFile(resp.status, body.decode("utf-8", errors="replace"))
            failure: LikenessError = FetchError(f"more than {self.settings.max_redirects} redirects")
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = await self._failed(urlsplit(url).hostname or "", url, exc)
        except LikenessError as exc:
            failure = exc
        if url == origin and isinstance(failure, DnsFailure | BlockedAddress | UnsafeUrl | CircuitOpen):
            raise failure
        return RobotsFile(0, unreachable=_reason(failure, url))

    async def _post(self, url: str, form: Mapping[str, str]) -> Any:
        assert self._session is not None
        host = await self._admit(url, robots=False)
        try:
            async with self._session.post(url, data=dict(form), allow_redirects=False) as resp:
                await self._throttle(host, resp)
                return json.loads(await self._body(url, resp))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise await self._failed(host, url, exc) from exc
        except ValueError as exc:
            raise FetchError(f"{redact(url)}: not JSON ({exc})") from exc


def _redirect(url: str, resp: aiohttp.ClientResponse) -> str | None:
    """The next hop, followed by hand so that it passes the guard like the first."""
    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
        return urljoin(url, resp.headers["Location"])
    return None


def _failure(url: str, exc: BaseException, timeout_s: float) -> LikenessError:
    """What a failed aiohttp request means, in our error tree."""
    shown = redact(url)
    cause = exc.__cause__ or getattr(exc, "os_error", None)
    if isinstance(cause, BlockedAddress | UnsafeUrl):  # the resolver's refusal, wrapped by some aiohttp versions
        return cause
    if isinstance(exc, aiohttp.InvalidURL):  # e.g. a non-canonical IPv4 spelling aiohttp will not connect to
        return UnsafeUrl(f"{shown}: not a URL the HTTP client accepts ({exc.__class__.__name__})")
    if isinstance(exc, aiohttp.ClientConnectorError) and _is_dns(exc):
        return DnsFailure(f"{shown}: the name {exc.host} does not resolve ({_os_reason(exc.os_error)})")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransientFetchError(f"{shown}: cannot connect to {exc.host}:{exc.port} ({_os_reason(exc.os_error)})")
    if isinstance(exc, TimeoutError):
        return TransientFetchError(f"{shown}: timed out (the limit is {timeout_s:g} s)")
    return TransientFetchError(f"{shown}: {exc.__class__.__name__}: {str(exc).replace(url, shown)}")


def _is_dns(exc: aiohttp.ClientConnectorError) -> bool:
    dns_error = getattr(aiohttp, "ClientConnectorDNSError", None)  # aiohttp >= 3.10
    return (dns_error is not None and isinstance(exc, dns_error)) or isinstance(exc.os_error, socket.gaierror)


def _os_reason(error: OSError) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "timed out"
    return error.strerror or str(error) or error.__class__.__name__


def _reason(failure: LikenessError, url: str) -> str:
    """Why a robots.txt was unreachable, for the message of every URL it then keeps us from."""
    text = str(failure)
    shown = redact(url)
    return text[len(shown) + 2 :] if text.startswith(f"{shown}: ") else text


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 1.0  # unreadable: do not pause on it
