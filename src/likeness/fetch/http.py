"""The one HTTP seam: an aiohttp session on a background event loop, behind a blocking ``get``.

Redirects are followed by hand so every hop passes the SSRF guard; bodies are capped while streaming.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urljoin

import aiohttp
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from likeness.errors import BlockedAddress, FetchError, LikenessError, TooLarge
from likeness.fetch.guard import PublicOnlyResolver, check_url
from likeness.settings import FetchSettings

T = TypeVar("T")


class TransientFetchError(FetchError):
    """Worth retrying: a 5xx, 429 or a dropped connection."""


class Fetcher:
    """``guard`` vets every URL, redirect hops included, before a connection is made."""

    def __init__(self, settings: FetchSettings, max_bytes: int, guard: Callable[[str], object] = check_url) -> None:
        self.settings = settings
        self.max_bytes = max_bytes
        self.guard = guard
        self._with_retries = retry(
            retry=retry_if_exception_type(TransientFetchError),
            stop=stop_after_attempt(settings.retries),
            wait=wait_exponential(multiplier=0.5, max=8),
            reraise=True,
        )(self._get_once)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="likeness-fetch", daemon=True)
        self._session: aiohttp.ClientSession | None = None

    def __enter__(self) -> Fetcher:
        self._thread.start()
        self._session = self._run(self._open())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            self._run(self._session.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def get(self, url: str) -> bytes:
        return self._run(self._get(url))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _open(self) -> aiohttp.ClientSession:
        resolver = None if self.settings.allow_private_networks else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, limit_per_host=4)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": self.settings.user_agent}
        )

    async def _get(self, url: str) -> bytes:
        return await self._with_retries(url)

    async def _get_once(self, url: str) -> bytes:
        assert self._session is not None
        for _ in range(self.settings.max_redirects + 1):
            if not self.settings.allow_private_networks:
                self.guard(url)
            try:
                async with self._session.get(url, allow_redirects=False) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    return await self._body(url, resp)
            except BlockedAddress:
                raise
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.__cause__, BlockedAddress) or isinstance(exc.os_error, BlockedAddress):
                    raise BlockedAddress(str(exc.os_error)) from exc
                raise TransientFetchError(f"{url}: {exc}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientFetchError(f"{url}: {exc.__class__.__name__}: {exc}") from exc
        raise FetchError(f"{url}: more than {self.settings.max_redirects} redirects")

    async def _body(self, url: str, resp: aiohttp.ClientResponse) -> bytes:
        if resp.status == 429 or resp.status >= 500:
            raise TransientFetchError(f"{url}: HTTP {resp.status}")
        if resp.status != 200:
            raise FetchError(f"{url}: HTTP {resp.status}")
        if (resp.content_length or 0) > self.max_bytes:
            raise TooLarge(f"{url}: {resp.content_length} bytes is over the {self.max_bytes}-byte limit")
        body = bytearray()
        async for chunk in resp.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > self.max_bytes:
                raise TooLarge(f"{url}: body is over the {self.max_bytes}-byte limit")
        return bytes(body)


def read_location(location: str, fetcher: Fetcher | None, max_bytes: int) -> bytes:
    """Bytes of a local path or URL, with the size cap applied before reading."""
    if location.startswith(("http://", "https://")):
        if fetcher is None:
            raise LikenessError(f"{location}: no fetcher configured for URLs")
        return fetcher.get(location)
    path = Path(location)
    size = path.stat().st_size
    if size > max_bytes:
        raise TooLarge(f"{size} bytes is over the {max_bytes}-byte limit")
    return path.read_bytes()
