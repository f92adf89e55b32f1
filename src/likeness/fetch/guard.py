"""SSRF guard: user-supplied URLs may only reach public addresses, checked again after DNS and redirects."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from likeness.errors import BlockedAddress, FetchError

# Cloud metadata endpoints reachable on some providers at otherwise "global" addresses.
_METADATA = {ipaddress.ip_address("100.100.100.200"), ipaddress.ip_address("fd00:ec2::254")}


def public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


def check_url(url: str) -> str:
    """Refuse non-http(s) URLs and literal non-public addresses; returns the host for the resolver to check."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"{url}: only http and https URLs can be fetched")
    host = (parts.hostname or "").strip("[]")
    if not host:
        raise FetchError(f"{url}: no host in URL")
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host  # a name: the resolver checks what it resolves to
    if not public(host):
        raise BlockedAddress(f"{url}: {host} is not a public address")
    return host


class PublicOnlyResolver(AbstractResolver):
    """Resolves through the system, then refuses the host if any address it resolves to is not public."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        blocked = [r["host"] for r in results if not public(r["host"])]
        if blocked:
            raise BlockedAddress(f"{host} resolves to non-public address {blocked[0]}")
        return results

    async def close(self) -> None:
        await self._inner.close()
