"""Who is asking, as the API knows it, and what the abuse controls answer."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """An authenticated request's origin: the account and token (None where there is none) and the client IP."""

    account_id: int | None
    token_id: int | None
    ip: str

    @property
    def keys(self) -> list[str]:
        """The trust keys of this caller, account first (the order rows are locked in, everywhere)."""
        own = [f"account:{self.account_id}"] if self.account_id is not None else []
        return [*own, f"ip:{self.address or self.ip}"]

    @property
    def address(self) -> str | None:
        """The IP in canonical form (an IPv4-mapped IPv6 address as IPv4), None when ``ip`` is not an address
        (a test client's "testclient"): such a caller is never inside a blocked network."""
        try:
            parsed = ipaddress.ip_address(self.ip)
        except ValueError:
            return None
        mapped = parsed.ipv4_mapped if isinstance(parsed, ipaddress.IPv6Address) else None
        return str(mapped or parsed)


@dataclass(frozen=True)
class Admission:
    """A request let through: ``shadow_banned`` tells the API to accept its submission without processing it."""

    shadow_banned: bool
    trust: float
