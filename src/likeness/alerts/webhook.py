"""Webhook delivery: JSON, signed with HMAC-SHA256 under the rule's secret, POSTed once per event.

The receiver checks ``X-Likeness-Signature: sha256=<hex>`` over ``<X-Likeness-Timestamp>.<body>`` (the timestamp
inside the MAC, so an old delivery cannot be replayed as new) and drops repeats by ``X-Likeness-Delivery``. The URL
is the operator's, but its host may resolve anywhere, at any send: every address it resolves to passes the SSRF
guard (fetch/guard.py, with ``fetch.allow_private_networks``), and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from likeness.errors import FetchError
from likeness.fetch.guard import Guard, PublicOnlyResolver, redact
from likeness.settings import Settings


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): constant-time comparison of the signature."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def post(url: str, secret: str, payload: dict[str, Any], delivery_id: int, settings: Settings) -> None:
    """One POST; raises FetchError unless the receiver answers 2xx."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": settings.fetch.user_agent,
        "X-Likeness-Event": str(payload.get("event", "")),
        "X-Likeness-Delivery": str(delivery_id),
        "X-Likeness-Timestamp": timestamp,
        "X-Likeness-Signature": sign(secret, timestamp, body),
    }
    asyncio.run(_post(url, body, headers, settings))


async def _post(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> None:
    guard = Guard(settings.fetch.allow_private_networks)
    guard.check_url(url)
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(guard))
    timeout = aiohttp.ClientTimeout(total=settings.alerts.timeout_s)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as resp,
        ):
            if not 200 <= resp.status < 300:
                raise FetchError(f"{redact(url)}: the webhook answered HTTP {resp.status}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise FetchError(f"{redact(url)}: {type(exc).__name__}: {exc}") from exc
