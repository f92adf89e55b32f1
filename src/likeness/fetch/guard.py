"""SSRF guard: a URL is fetched only if every address it can reach is public, whatever its spelling.

Anyone can hand the scanner a URL (a scan target, a crawled page, a redirect), so a URL must never make it talk
to the machine it runs on, the network around it, or the cloud's metadata service (which hands out credentials).
The guard judges what an address *means*, not how it is written:

- the host is read the way the HTTP client reads it (yarl, which aiohttp uses: IDNA applied, brackets removed),
  then every IPv4 spelling a resolver accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, a trailing
  dot) is turned into the address it stands for;
- names are resolved at connect time by ``PublicOnlyResolver`` and *every* address they resolve to is judged, so a
  name cannot resolve to a public address when checked and a private one when used (DNS rebinding);
- addresses are judged against the IANA special-purpose registries, written out below rather than taken from
  ``ipaddress.is_global`` (its lists changed between Python patch releases), and IPv6 forms that carry an IPv4
  address are judged by that IPv4 address.

``fetch.allow_private_networks`` lifts the private-network rule only (loopback, RFC 1918, CGN, ULA, benchmarking);
link-local addresses, metadata addresses and names, and everything that is not a unicast host stay refused.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from likeness.errors import BlockedAddress, UnsafeUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# How a special-purpose block is treated.
PUBLIC = "public"  # globally reachable, per IANA
LOCAL = "local"  # a private network: refused unless fetch.allow_private_networks
NEVER = "never"  # not a unicast host anyone should fetch from: always refused
EMBEDS = "embeds"  # an IPv6 form carrying IPv4 addresses: judged by those


@dataclass(frozen=True)
class Block:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    use: str
    rule: str
    reference: str
    inner: Callable[[int], list[int]] | None = None  # EMBEDS: the IPv4 addresses inside, from the address's value


def _block(cidr: str, use: str, rule: str, reference: str, inner: Callable[[int], list[int]] | None = None) -> Block:
    return Block(ipaddress.ip_network(cidr), use, rule, reference, inner)


def _low32(value: int) -> list[int]:
    return [value & 0xFFFFFFFF]


def _sixtofour(value: int) -> list[int]:
    return [(value >> 80) & 0xFFFFFFFF]  # 2002:AABB:CCDD::/48


def _teredo(value: int) -> list[int]:
    # RFC 4380 §4: the server's IPv4 address in bits 32-63, the client's (its NAT's) in the last 32 bits, inverted.
    return [(value >> 64) & 0xFFFFFFFF, ~value & 0xFFFFFFFF]


# IANA IPv4 Special-Purpose Address Registry
# (https://www.iana.org/assignments/iana-ipv4-special-registry/), plus multicast (RFC 5771) and the limited
# broadcast address, which the registry lists elsewhere. Addresses in no block are public. The most specific
# block wins (192.0.0.9 inside 192.0.0.0/24). Benchmarking and CGN space are lab and carrier networks: LOCAL.
# Link-local is NEVER even with allow_private_networks: it is where cloud agents listen (metadata, ECS, EKS).
IPV4_BLOCKS = (
    _block("0.0.0.0/8", '"this network"', NEVER, "RFC 791 §3.2"),
    _block("10.0.0.0/8", "private-use", LOCAL, "RFC 1918"),
    _block("100.64.0.0/10", "shared address space (CGN)", LOCAL, "RFC 6598"),
    _block("127.0.0.0/8", "loopback", LOCAL, "RFC 1122 §3.2.1.3"),
    _block("169.254.0.0/16", "link-local", NEVER, "RFC 3927"),
    _block("172.16.0.0/12", "private-use", LOCAL, "RFC 1918"),
    _block("192.0.0.0/24", "IETF protocol assignments", NEVER, "RFC 6890 §2.1"),  # DS-Lite, NAT64 discovery...
    _block("192.0.0.9/32", "PCP anycast", PUBLIC, "RFC 7723"),
    _block("192.0.0.10/32", "TURN anycast", PUBLIC, "RFC 8155"),
    _block("192.0.2.0/24", "documentation (TEST-NET-1)", NEVER, "RFC 5737"),
    _block("192.31.196.0/24", "AS112-v4", PUBLIC, "RFC 7535"),
    _block("192.52.193.0/24", "AMT", PUBLIC, "RFC 7450"),
    _block("192.88.99.0/24", "deprecated 6to4 relay anycast", NEVER, "RFC 7526"),
    _block("192.168.0.0/16", "private-use", LOCAL, "RFC 1918"),
    _block("192.175.48.0/24", "AS112 direct delegation", PUBLIC, "RFC 7534"),
    _block("198.18.0.0/15", "benchmarking", LOCAL, "RFC 2544"),
    _block("198.51.100.0/24", "documentation (TEST-NET-2)", NEVER, "RFC 5737"),
    _block("203.0.113.0/24", "documentation (TEST-NET-3)", NEVER, "RFC 5737"),
    _block("224.0.0.0/4", "multicast", NEVER, "RFC 5771"),
    _block("240.0.0.0/4", "reserved", NEVER, "RFC 1112 §4"),
    _block("255.255.255.255/32", "limited broadcast", NEVER, "RFC 919, RFC 8190"),
)

# IANA IPv6 Special-Purpose Address Registry (https://www.iana.org/assignments/iana-ipv6-special-registry/), plus
# multicast, link-local and the deprecated site-local block. Outside these, only global unicast 2000::/3 is public.
# IPv4 inside IPv6, judged by the IPv4 address (a private IPv4 inside is refused, a public one allowed):
# - IPv4-mapped ::ffff:a.b.c.d: the dual-stack socket connects to a.b.c.d itself;
# - NAT64 64:ff9b::a.b.c.d and 6to4 2002:AABB:CCDD::/48: a translator or relay forwards to that IPv4 address;
# - Teredo 2001:0::/32: both the server and the (inverted) client address must be public;
# - IPv4-compatible ::a.b.c.d (deprecated) and IPv4-translated ::ffff:0:a.b.c.d (SIIT, obsolete): no stack we
#   know routes them today, but old tunnels and translators did, so they get the same judgement;
# - local-use NAT64 64:ff9b:1::/48 is a private network's translator: LOCAL, and even when allowed it may not
#   carry a metadata or link-local IPv4 address at any RFC 6052 position (see ``_local_nat64``);
# - ISATAP interface ids (…:0:5efe:a.b.c.d, …:200:5efe:a.b.c.d, RFC 5214) on any prefix: refused when the IPv4
#   address is, since we cannot tell whether the ISATAP link is ours.
IPV6_BLOCKS = (
    _block("::/128", "unspecified", NEVER, "RFC 4291 §2.5.2"),
    _block("::1/128", "loopback", LOCAL, "RFC 4291 §2.5.3"),
    _block("::/96", "IPv4-compatible (deprecated)", EMBEDS, "RFC 4291 §2.5.5.1", _low32),
    _block("::ffff:0:0/96", "IPv4-mapped", EMBEDS, "RFC 4291 §2.5.5.2", _low32),
    _block("::ffff:0:0:0/96", "IPv4-translated", EMBEDS, "RFC 2765 §2.1", _low32),
    _block("64:ff9b::/96", "NAT64", EMBEDS, "RFC 6052", _low32),
    _block("64:ff9b:1::/48", "local-use NAT64", LOCAL, "RFC 8215"),
    _block("100::/64", "discard-only", NEVER, "RFC 6666"),
    _block("100:0:0:1::/64", "dummy prefix", NEVER, "RFC 9780"),
    _block("2001::/23", "IETF protocol assignments", NEVER, "RFC 2928"),
    _block("2001::/32", "Teredo", EMBEDS, "RFC 4380", _teredo),
    _block("2001:1::1/128", "PCP anycast", PUBLIC, "RFC 7723"),
    _block("2001:1::2/128", "TURN anycast", PUBLIC, "RFC 8155"),
    _block("2001:1::3/128", "DNS-SD SRP anycast", PUBLIC, "RFC 9665"),
    _block("2001:2::/48", "benchmarking", LOCAL, "RFC 5180"),
    _block("2001:3::/32", "AMT", PUBLIC, "RFC 7450"),
    _block("2001:4:112::/48", "AS112-v6", PUBLIC, "RFC 7535"),
    _block("2001:10::/28", "deprecated ORCHID", NEVER, "RFC 4843"),
    _block("2001:20::/28", "ORCHIDv2", PUBLIC, "RFC 7343"),
    _block("2001:30::/28", "drone remote ID", PUBLIC, "RFC 9374"),
    _block("2001:db8::/32", "documentation", NEVER, "RFC 3849"),
    _block("2002::/16", "6to4", EMBEDS, "RFC 3056", _sixtofour),
    _block("2620:4f:8000::/48", "AS112 direct delegation", PUBLIC, "RFC 7534"),
    _block("3fff::/20", "documentation", NEVER, "RFC 9637"),
    _block("5f00::/16", "segment routing SIDs", NEVER, "RFC 9602"),
    _block("fc00::/7", "unique local", LOCAL, "RFC 4193"),
    _block("fe80::/10", "link-local", NEVER, "RFC 4291 §2.5.6"),
    _block("fec0::/10", "site-local (deprecated)", LOCAL, "RFC 3879"),
    _block("ff00::/8", "multicast", NEVER, "RFC 4291 §2.7"),
)
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")

# Cloud metadata and agent endpoints: refused even with allow_private_networks. AWS: IMDS 169.254.169.254 and
# fd00:ec2::254, ECS task metadata 169.254.170.2, EKS Pod Identity 169.254.170.23 and fd00:ec2::23; GCP, Azure,
# DigitalOcean, Oracle, OpenStack also serve 169.254.169.254 (OpenStack over IPv6 at fe80::a9fe:a9fe); Azure's
# WireServer 168.63.129.16 (a public address); Alibaba 100.100.100.200 (CGN space); Oracle's 192.0.0.192.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "168.63.129.16",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::23",
        "fe80::a9fe:a9fe",
    )
)
# Names that reach them (GCP's, and AWS's instance-data), refused by name whatever a resolver says of them.
METADATA_NAMES = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"}
)

_BY_SPECIFICITY = {
    4: sorted(IPV4_BLOCKS, key=lambda b: -b.network.prefixlen),
    6: sorted(IPV6_BLOCKS, key=lambda b: -b.network.prefixlen),
}
_NUMERIC_PART = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_SECRET_PARAM = re.compile(r"token|key|secret|pass|pwd|sig|auth|credential|session", re.IGNORECASE)
# The user info of a URL, also in strings that are no valid URL ("user:pw@host", backslashes for slashes).
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:)?([/\\]*)[^/?#\\]*@")
_PARAM = re.compile(r"([?&;]([^=&;#]*)=)[^&;#]*")


def redact(url: str) -> str:
    """``url`` fit for a message or a log line: no user name or password, no values of secret-looking query
    parameters (tokens, keys, signatures). Works on strings that are not valid URLs too."""
    shown = _USERINFO.sub(r"\1\2***@", url, count=1)
    return _PARAM.sub(lambda m: f"{m[1]}***" if _SECRET_PARAM.search(m[2]) else m[0], shown)


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address a resolver makes of a numeric IPv4 spelling (inet_aton's and WHATWG's rules: one to four
    parts, each decimal, octal with a leading 0 or hex with 0x, the last filling the remaining bytes), or None
    when ``host`` is not numeric. Raises ValueError for numeric hosts that are no address (``1.2.3.4.5``)."""
    parts = host.split(".")
    if not all(_NUMERIC_PART.fullmatch(p) for p in parts):
        return None
    if len(parts) > 4:
        raise ValueError("more than four parts")
    *head, last = [_numeric(p) for p in parts]
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(parts)):
        raise ValueError("a part is out of range")
    return ipaddress.IPv4Address(sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + last)


def _numeric(part: str) -> int:
    if part[:2].lower() == "0x":
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)  # "08": a ValueError, as resolvers refuse it
    return int(part)


class Guard:
    """What may be fetched. ``refusal`` says why an address may not be reached; ``check_url`` vets a URL before a
    request (scheme, credentials, host spelling, literal addresses, metadata names)."""

    def __init__(self, allow_private_networks: bool = False) -> None:
        self.allow_private_networks = allow_private_networks

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused (a phrase naming its block and the RFC), or None when it may be reached."""
        if address in METADATA_ADDRESSES:
            return "a cloud metadata address (refused even with allow_private_networks)"
        block = _most_specific(address)
        if block is not None and block.inner is not None:
            return self._embedded(address, block)
        if block is None:
            public = address.version == 4 or address in _GLOBAL_UNICAST
            why = None if public else "outside global unicast 2000::/3 (RFC 4291 §2.4)"
        else:
            why = self._rule(block)
        if why is None and isinstance(address, ipaddress.IPv6Address):
            why = self._local_nat64(address) or self._isatap(address)
        return why

    def check_address(self, address: str, shown: str) -> None:
        """Raise BlockedAddress, its message starting with ``shown``, if ``address`` (a zone id aside) is refused."""
        ip = ipaddress.ip_address(address.partition("%")[0])
        why = self.refusal(ip)
        if why is not None:
            raise BlockedAddress(f"{shown}: {ip} is not a public address: {why}")

    def check_name(self, name: str, shown: str) -> None:
        if name.lower().rstrip(".") in METADATA_NAMES:
            raise BlockedAddress(f"{shown}: {name} is a cloud metadata name, never fetched")

    def check_url(self, url: str) -> str:
        """Refuse anything but an http(s) URL without credentials whose host is a well-formed name or a public
        address; returns the host (a canonical address, or a name for the resolver to judge)."""
        parsed, shown = _parse(url), redact(url)
        host = (parsed.raw_host or "").lower()
        if ":" in host:  # an IPv6 literal, brackets already removed
            address, _, zone = host.partition("%")
            self.check_address(address, shown)
            if zone:
                raise UnsafeUrl(f"{shown}: a zone id (%{zone}) names a local interface; not fetched")
            return str(ipaddress.IPv6Address(address))
        name = host[:-1] if host.endswith(".") else host
        try:
            ipv4 = parse_ipv4(name)
        except ValueError as exc:
            raise UnsafeUrl(f"{shown}: {host} looks like an IPv4 address but is none ({exc})") from exc
        if ipv4 is not None:
            self.check_address(str(ipv4), shown)
            return str(ipv4)
        if not _HOST_NAME.fullmatch(name):
            raise UnsafeUrl(f"{shown}: {host!r} is not a host name")
        self.check_name(name, shown)
        return name

    def _rule(self, block: Block) -> str | None:
        if block.rule == PUBLIC or (block.rule == LOCAL and self.allow_private_networks):
            return None
        lifted = " (allowed only with fetch.allow_private_networks)" if block.rule == LOCAL else ""
        return f"{block.use} ({block.reference}){lifted}"

    def _embedded(self, address: IPAddress, block: Block) -> str | None:
        assert block.inner is not None
        for value in block.inner(int(address)):
            inner = ipaddress.IPv4Address(value)
            why = self.refusal(inner)
            if why is not None:
                return f"{block.use} ({block.reference}) of {inner}, {why}"
        return None

    def _local_nat64(self, address: ipaddress.IPv6Address) -> str | None:
        """A local-use NAT64 prefix may be /48 to /96 long (RFC 6052 §2.2): whichever it is, the IPv4 address it
        carries may not be a metadata or link-local one."""
        if address not in _LOCAL_NAT64:
            return None
        value = int(address)
        layouts = (
            ((value >> 64) & 0xFFFF) << 16 | (value >> 40) & 0xFFFF,  # /48 (bits 64-71 are the zero "u" octet)
            ((value >> 64) & 0xFF) << 24 | (value >> 32) & 0xFFFFFF,  # /56
            (value >> 24) & 0xFFFFFFFF,  # /64
            value & 0xFFFFFFFF,  # /96
        )
        for inner in map(ipaddress.IPv4Address, layouts):
            if inner in METADATA_ADDRESSES or inner in _LINK_LOCAL_V4:
                return f"local-use NAT64 (RFC 8215) that may carry {inner}, a metadata or link-local address"
        return None

    def _isatap(self, address: ipaddress.IPv6Address) -> str | None:
        interface_id = int(address) & 0xFFFFFFFFFFFFFFFF
        if (interface_id >> 32) & 0xFCFFFFFF != 0x5EFE:  # 00-00-5E-FE, the u and g bits aside (RFC 5214 §6.1)
            return None
        inner = ipaddress.IPv4Address(interface_id & 0xFFFFFFFF)
        why = self.refusal(inner)
        return None if why is None else f"an ISATAP interface id (RFC 5214) of {inner}, {why}"


def _most_specific(address: IPAddress) -> Block | None:
    return next((b for b in _BY_SPECIFICITY[address.version] if address in b.network), None)


def _parse(url: str) -> URL:
    """The URL as aiohttp will read it, if it is one we fetch at all."""
    shown = redact(url)
    try:
        parsed = URL(url)
    except (TypeError, ValueError) as exc:
        raise UnsafeUrl(f"{shown}: not a valid URL ({str(exc).replace(url, shown)})") from exc
    if parsed.scheme not in ("http", "https"):
        what = f"a {parsed.scheme}: URL" if parsed.scheme else "a path or a scheme-relative URL"
        raise UnsafeUrl(f"{shown}: only http and https URLs can be fetched, this is {what}")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeUrl(f"{shown}: URLs with credentials (user:password@) are refused")
    if not parsed.raw_host:
        raise UnsafeUrl(f"{shown}: no host in URL")
    return parsed


_STRICT = Guard()


def check_url(url: str) -> str:
    """The guard with private networks refused (the default); see ``Guard.check_url``."""
    return _STRICT.check_url(url)


class PublicOnlyResolver(AbstractResolver):
    """Resolves through ``inner`` (the system's resolver by default), then refuses the host if any address it
    resolves to is refused: aiohttp connects only to what this returns, so this is the check DNS cannot dodge."""

    def __init__(self, guard: Guard | None = None, inner: AbstractResolver | None = None) -> None:
        self.guard = guard or _STRICT
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.guard.check_name(host, host)
        results = await self._inner.resolve(host, port, family)
        for result in results:
            self.guard.check_address(result["host"], f"{host} resolves to {result['host']}")
        return results

    async def close(self) -> None:
        await self._inner.close()


class StaticResolver(AbstractResolver):
    """Names resolved from a table, never through DNS: the seam tests use to make a name resolve to chosen
    addresses (and a way to pin hosts, as curl's --resolve does). A name not in the table does not resolve."""

    def __init__(self, table: Mapping[str, Sequence[str]]) -> None:
        self.table = {name.lower().rstrip("."): list(addresses) for name, addresses in table.items()}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = [_result(host, address, port) for address in self.table.get(host.lower().rstrip("."), [])]
        results = [r for r in results if family in (socket.AF_UNSPEC, r["family"])]
        if not results:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return results

    async def close(self) -> None:
        pass


def _result(host: str, address: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=flags)
