"""The SSRF guard judges what an address means, not how it is spelled: a table over IPv4 spellings, IPv6 forms
that carry IPv4, special-purpose blocks, metadata addresses and names (with and without allow_private_networks),
names resolved through the resolver seam, schemes and credentials; then a real aiohttp server on 127.0.0.1 whose
redirects point where no fetch may go, and DNS failures that must read as "dns", not as robots.txt rules."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address

import pytest
from aiohttp import web

from likeness.errors import BlockedAddress, DnsFailure, RobotsDisallowed, TransientFetchError, UnsafeUrl
from likeness.fetch import Fetcher
from likeness.fetch.guard import Guard, PublicOnlyResolver, StaticResolver, check_url, parse_ipv4, redact
from likeness.settings import FetchSettings
from tests import images

OK, BLOCKED, UNSAFE = "ok", "blocked", "unsafe"
LOCAL = (BLOCKED, OK)  # refused by default, allowed with allow_private_networks
NEVER = (BLOCKED, BLOCKED)  # refused either way
PUBLIC = (OK, OK)
BAD = (UNSAFE, UNSAFE)

# (URL host, (verdict by default, verdict with allow_private_networks))
SPELLINGS = [
    # IPv4 numeric forms a resolver accepts (inet_aton / WHATWG), all meaning 127.0.0.1
    ("2130706433", LOCAL),
    ("0177.0.0.1", LOCAL),
    ("017700000001", LOCAL),
    ("0x7f.1", LOCAL),
    ("0X7F.0.0.1", LOCAL),
    ("0x7f000001", LOCAL),
    ("127.1", LOCAL),
    ("127.0.1", LOCAL),
    ("127.0.0.1.", LOCAL),
    ("①②⑦.0.0.1", LOCAL),  # IDNA maps the circled digits to 127.0.0.1
    ("１２７.０.０.１", LOCAL),  # full-width digits
    ("10.1", LOCAL),  # 10.0.0.1
    # ... and the metadata address, spelled otherwise
    ("2852039166", NEVER),
    ("0xa9fea9fe", NEVER),
    ("0251.0376.0251.0376", NEVER),
    ("169.254.43518", NEVER),
    ("0", NEVER),  # 0.0.0.0: on Linux, connecting to it reaches this machine
    ("134744072", PUBLIC),  # 8.8.8.8
    ("0x8.0x8.0x8.0x8", PUBLIC),
    # numeric hosts that are no address, and hosts no resolver should see
    ("1.2.3.4.5", BAD),
    ("256.0.0.1", BAD),
    ("08.0.0.1", BAD),
    ("4294967296", BAD),
    ("%31%32%37.0.0.1", BAD),
    ("exa%6dple.com", BAD),
    ("[127.0.0.1]", BAD),
    # IPv4 special-purpose blocks
    ("10.1.2.3", LOCAL),
    ("172.16.0.1", LOCAL),
    ("192.168.1.1", LOCAL),
    ("100.64.0.1", LOCAL),
    ("198.18.0.1", LOCAL),
    ("169.254.1.1", NEVER),
    ("192.0.0.8", NEVER),
    ("192.0.0.170", NEVER),
    ("192.0.2.1", NEVER),
    ("198.51.100.1", NEVER),
    ("203.0.113.1", NEVER),
    ("192.88.99.1", NEVER),
    ("224.0.0.1", NEVER),
    ("239.255.255.250", NEVER),
    ("240.0.0.1", NEVER),
    ("255.255.255.255", NEVER),
    ("192.0.0.9", PUBLIC),  # PCP anycast: globally reachable inside 192.0.0.0/24
    ("192.31.196.1", PUBLIC),
    ("1.1.1.1", PUBLIC),
    ("8.8.8.8", PUBLIC),
    # IPv6 literals and special-purpose blocks
    ("[::1]", LOCAL),
    ("[0:0:0:0:0:0:0:1]", LOCAL),
    ("[::]", NEVER),
    ("[fc00::1]", LOCAL),
    ("[fd12:3456::1]", LOCAL),
    ("[fec0::1]", LOCAL),
    ("[fe80::1]", NEVER),
    ("[ff02::1]", NEVER),
    ("[2001:db8::1]", NEVER),
    ("[3fff::1]", NEVER),
    ("[100::1]", NEVER),
    ("[2001:2::1]", LOCAL),
    ("[2001:10::1]", NEVER),
    ("[5f00::1]", NEVER),
    ("[4000::1]", NEVER),  # outside global unicast
    ("[2606:4700:4700::1111]", PUBLIC),
    ("[2001:4:112::1]", PUBLIC),
    # IPv4-mapped ::ffff:0:0/96
    ("[::ffff:127.0.0.1]", LOCAL),
    ("[0:0:0:0:0:ffff:7f00:1]", LOCAL),
    ("[::ffff:10.0.0.1]", LOCAL),
    ("[::ffff:169.254.169.254]", NEVER),
    ("[::ffff:0.0.0.0]", NEVER),
    ("[::ffff:8.8.8.8]", PUBLIC),
    # IPv4-compatible ::/96 (deprecated)
    ("[::127.0.0.1]", LOCAL),
    ("[::169.254.169.254]", NEVER),
    ("[::0.0.0.2]", NEVER),
    ("[::8.8.8.8]", PUBLIC),
    # IPv4-translated ::ffff:0:0:0/96
    ("[::ffff:0:127.0.0.1]", LOCAL),
    ("[::ffff:0:169.254.169.254]", NEVER),
    ("[::ffff:0:8.8.8.8]", PUBLIC),
    # NAT64 64:ff9b::/96 and local-use 64:ff9b:1::/48
    ("[64:ff9b::127.0.0.1]", LOCAL),
    ("[64:ff9b::192.168.0.1]", LOCAL),
    ("[64:ff9b::169.254.169.254]", NEVER),
    ("[64:ff9b::8.8.8.8]", PUBLIC),
    ("[64:ff9b:1::8.8.8.8]", LOCAL),
    ("[64:ff9b:1::169.254.169.254]", NEVER),  # /96 layout
    ("[64:ff9b:1:a9fe:a9:fe00::]", NEVER),  # the same address in the /64 layout
    # 6to4 2002::/16: the IPv4 address in bits 16-47
    ("[2002:7f00:1::1]", LOCAL),
    ("[2002:c0a8:1::1]", LOCAL),
    ("[2002:a9fe:a9fe::1]", NEVER),
    ("[2002:808:808::1]", PUBLIC),
    # Teredo 2001::/32: server 65.54.227.120 in bits 32-63, client inverted in the last 32 bits
    ("[2001:0:4136:e378:8000:63bf:f5ff:fffe]", LOCAL),  # client 10.0.0.1
    ("[2001:0:4136:e378:8000:63bf:5601:5601]", NEVER),  # client 169.254.169.254
    ("[2001:0:a00:1:8000:63bf:f7f7:f7f7]", LOCAL),  # server 10.0.0.1
    ("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]", PUBLIC),  # client 8.8.8.8
    ("[2001::1]", NEVER),  # server 0.0.0.0
    # ISATAP interface ids on a global prefix
    ("[2001:4860:1::5efe:10.0.0.1]", LOCAL),
    ("[2001:4860:1::200:5efe:169.254.169.254]", NEVER),
    ("[2001:4860:1::200:5efe:8.8.8.8]", PUBLIC),
    ("[fe80::5efe:8.8.8.8]", NEVER),
    # zone ids and brackets
    ("[fe80::1%25eth0]", NEVER),
    ("[::1%25lo]", (BLOCKED, UNSAFE)),  # loopback when refused; a zone id is never accepted
    ("[2606:4700:4700::1111%25eth0]", BAD),
    # cloud metadata, by address and by name: refused even with allow_private_networks
    ("169.254.169.254", NEVER),
    ("169.254.170.2", NEVER),
    ("169.254.170.23", NEVER),
    ("100.100.100.200", NEVER),
    ("192.0.0.192", NEVER),
    ("168.63.129.16", NEVER),
    ("[fd00:ec2::254]", NEVER),
    ("[fd00:ec2::23]", NEVER),
    ("[fe80::a9fe:a9fe]", NEVER),
    ("metadata.google.internal", NEVER),
    ("METADATA.Google.Internal.", NEVER),
    ("metadata", NEVER),
    ("instance-data", NEVER),
    # names: resolved later, at connect time
    ("example.com", PUBLIC),
    ("bücher.de", PUBLIC),
    ("ex ample.com", BAD),
]


def _verdict(guard: Guard, url: str) -> str:
    try:
        guard.check_url(url)
    except BlockedAddress:
        return BLOCKED
    except UnsafeUrl:
        return UNSAFE
    return OK


@pytest.mark.parametrize(("host", "expected"), SPELLINGS, ids=[h for h, _ in SPELLINGS])
def test_the_guard_judges_what_an_address_means(host: str, expected: tuple[str, str]) -> None:
    url = f"http://{host}/x.jpg"
    assert (_verdict(Guard(), url), _verdict(Guard(allow_private_networks=True), url)) == expected


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.1", "127.0.0.1"),
        ("10.1.65535", "10.1.255.255"),
        ("0x", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("example.com", None),
        ("1.example", None),
    ],
)
def test_numeric_ipv4_spellings_are_read_as_resolvers_read_them(spelling: str, address: str | None) -> None:
    assert parse_ipv4(spelling) == (IPv4Address(address) if address else None)


def test_literal_hosts_come_back_canonical() -> None:
    assert check_url("http://134744072/") == "8.8.8.8"
    assert check_url("http://[::FFFF:8.8.8.8]/") == "::ffff:808:808"
    assert check_url("HTTPS://Example.COM./") == "example.com"


def test_refusals_name_the_block_and_the_embedded_address() -> None:
    with pytest.raises(BlockedAddress, match=r"6to4 \(RFC 3056\) of 127\.0\.0\.1, loopback"):
        check_url("http://[2002:7f00:1::1]/")
    with pytest.raises(BlockedAddress, match="cloud metadata address"):
        Guard(allow_private_networks=True).check_url("http://[::ffff:169.254.169.254]/")


RESOLVED = [
    ("pics.test", ["93.184.216.34"], PUBLIC),
    ("pics.test", ["2606:4700:4700::1111", "1.1.1.1"], PUBLIC),
    ("lan.test", ["10.0.0.7"], LOCAL),
    ("mixed.test", ["93.184.216.34", "192.168.1.1"], LOCAL),  # every address is judged, not the first
    ("rebind.test", ["93.184.216.34", "169.254.169.254"], NEVER),
    ("mapped.test", ["::ffff:127.0.0.1"], LOCAL),
    ("nat64.test", ["64:ff9b::a9fe:a9fe"], NEVER),
    ("sixtofour.test", ["2002:a00:1::1"], LOCAL),
    ("link.test", ["fe80::1%eth0"], NEVER),
    ("metadata.google.internal", ["93.184.216.34"], NEVER),  # refused by name, whatever it resolves to
    ("azure.test", ["168.63.129.16"], NEVER),
]


def _resolve(guard: Guard, host: str, addresses: list[str]) -> str:
    resolver = PublicOnlyResolver(guard, StaticResolver({host: addresses}))
    try:
        results = asyncio.run(resolver.resolve(host, 443, socket.AF_UNSPEC))
    except BlockedAddress:
        return BLOCKED
    assert sorted(r["host"] for r in results) == sorted(addresses)
    return OK


@pytest.mark.parametrize(("host", "addresses", "expected"), RESOLVED, ids=[str(a) for _, a, _ in RESOLVED])
def test_every_address_a_name_resolves_to_is_judged(host: str, addresses: list[str], expected: tuple) -> None:
    verdicts = (_resolve(Guard(), host, addresses), _resolve(Guard(allow_private_networks=True), host, addresses))
    assert verdicts == expected


def test_the_static_resolver_knows_only_its_table() -> None:
    resolver = StaticResolver({"pics.test": ["127.0.0.1", "::1"]})
    resolved = asyncio.run(resolver.resolve("pics.test", 80, socket.AF_UNSPEC))
    assert [r["host"] for r in resolved] == ["127.0.0.1", "::1"]
    with pytest.raises(OSError):
        asyncio.run(resolver.resolve("elsewhere.test", 80))


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "ftp://example.org/x",
        "gopher://example.org:70/_x",
        "data:text/plain,hi",
        "javascript:alert(1)",
        "mailto:a@example.org",
        "/etc/passwd",
        "etc/passwd",
        "//example.org/x",
        "http:///x",
        "http:example.org/x",
        "ws://example.org/",
    ],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    for guard in (Guard(), Guard(allow_private_networks=True)):
        with pytest.raises(UnsafeUrl):
            guard.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://alice:hunter2@example.com/x.jpg",
        "https://alice:hunter2@[2606:4700::1]/",
        "http://:hunter2@example.com/",
        "http://hunter2@example.com/",
    ],
)
def test_credentials_are_refused_and_never_shown(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="credentials") as refused:
        check_url(url)
    assert "hunter2" not in str(refused.value) and "alice" not in str(refused.value)


def test_credentials_are_refused_by_the_fetcher_before_any_connection() -> None:
    settings = FetchSettings(allow_private_networks=True)
    with Fetcher(settings, 1 << 20) as fetcher, pytest.raises(UnsafeUrl) as refused:
        fetcher.get("http://alice:hunter2@127.0.0.1:9/x.jpg")
    assert "hunter2" not in str(refused.value) and fetcher.stats.requests == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:hunter2@example.com/a", "http://***@example.com/a"),
        ("alice:hunter2@example.com/a", "alice:***@example.com/a"),
        (
            "https://cdn.test/x.jpg?token=abc&w=450&X-Amz-Signature=ff",
            "https://cdn.test/x.jpg?token=***&w=450&X-Amz-Signature=***",
        ),
        ("https://example.com/a@b?q=1", "https://example.com/a@b?q=1"),
    ],
)
def test_redact_hides_credentials_and_secret_parameters(url: str, shown: str) -> None:
    assert redact(url) == shown


PICTURE = images.encode(images.astronaut_face_crop())


@dataclass
class Server:
    base: str
    port: int
    seen: list[str] = field(default_factory=list)


REDIRECTS = {
    "/to-file": "file:///etc/passwd",
    "/to-private": "http://10.0.0.1/x.jpg",
    "/to-metadata": "http://169.254.169.254/latest/meta-data/",
    "/to-metadata-decimal": "http://2852039166/latest/meta-data/",
    "/to-metadata-mapped": "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "/to-metadata-name": "http://metadata.google.internal/computeMetadata/v1/",
    "/to-scheme-relative": "//169.254.169.254/latest/meta-data/",
    "/to-credentials": "http://alice:hunter2@127.0.0.1:{port}/face.jpg",
    "/to-rebinding-name": "http://rebind.test:{port}/face.jpg",
    "/to-good-name": "http://pics.test:{port}/face.jpg",
}


def _app(server: Server) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        server.seen.append(request.path)
        if request.path in REDIRECTS:
            raise web.HTTPFound(REDIRECTS[request.path].format(port=server.port))
        if request.path == "/face.jpg":
            return web.Response(body=PICTURE, content_type="image/jpeg")
        return web.Response(status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    return app


@pytest.fixture
def server() -> Iterator[Server]:
    """A plain aiohttp app on 127.0.0.1, in a thread; the port is known once it listens."""
    served = Server("", 0)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app(served), access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    served.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    served.base = f"http://127.0.0.1:{served.port}"
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield served
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def _loosened(server: Server) -> Callable[[str], object]:
    """The strict guard, except for the test server's own origin (a loopback address it would refuse)."""

    def guard(url: str) -> object:
        return None if url.startswith(server.base + "/") else check_url(url)

    return guard


# (path, the error its redirect must raise, what the message names)
REFUSED_HOPS = [
    ("/to-file", UnsafeUrl, "only http and https"),
    ("/to-private", BlockedAddress, r"10\.0\.0\.1 is not a public address: private-use"),
    ("/to-metadata", BlockedAddress, "cloud metadata address"),
    ("/to-metadata-decimal", BlockedAddress, r"169\.254\.169\.254 is not a public address"),
    ("/to-metadata-mapped", BlockedAddress, r"IPv4-mapped .* of 169\.254\.169\.254"),
    ("/to-metadata-name", BlockedAddress, "cloud metadata name"),
    ("/to-scheme-relative", BlockedAddress, "cloud metadata address"),
    ("/to-credentials", UnsafeUrl, "credentials"),
]


@pytest.mark.parametrize(("path", "error", "says"), REFUSED_HOPS, ids=[p for p, _, _ in REFUSED_HOPS])
def test_a_redirect_where_no_fetch_may_go_is_refused(
    server: Server, path: str, error: type[Exception], says: str
) -> None:
    fetcher = Fetcher(FetchSettings(retries=1), 1 << 20, _loosened(server))
    with fetcher, pytest.raises(error, match=says) as refused:
        fetcher.get(server.base + path)
    assert f"{server.base}{path} redirects to" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert server.seen == ["/robots.txt", path]  # nothing was asked for after the refused hop


@pytest.mark.parametrize(("path", "error", "says"), [h for h in REFUSED_HOPS if h[0] != "/to-private"])
def test_allowing_private_networks_lifts_only_the_private_network_rule(
    server: Server, path: str, error: type[Exception], says: str
) -> None:
    with Fetcher(FetchSettings(retries=1, allow_private_networks=True), 1 << 20) as fetcher:
        assert fetcher.get(server.base + "/face.jpg") == PICTURE  # loopback: allowed now
        with pytest.raises(error, match=says):
            fetcher.get(server.base + path)


def test_names_are_judged_at_connect_time_by_every_address_they_resolve_to(server: Server) -> None:
    resolver = StaticResolver({"pics.test": ["127.0.0.1"], "rebind.test": ["127.0.0.1", "169.254.169.254"]})
    settings = FetchSettings(retries=1, allow_private_networks=True)
    with Fetcher(settings, 1 << 20, resolver=resolver) as fetcher:
        assert fetcher.get(server.base + "/to-good-name") == PICTURE
        with pytest.raises(BlockedAddress, match=r"rebind\.test resolves to 169\.254\.169\.254"):
            fetcher.get(server.base + "/to-rebinding-name")
    strict = Fetcher(FetchSettings(retries=1), 1 << 20, resolver=resolver)
    with strict, pytest.raises(BlockedAddress, match=r"pics\.test resolves to 127\.0\.0\.1.*loopback"):
        strict.get(f"http://pics.test:{server.port}/face.jpg")
    assert server.seen.count("/face.jpg") == 1


@pytest.mark.parametrize("respect_robots", [True, False])
def test_a_name_that_does_not_resolve_is_a_dns_failure(respect_robots: bool) -> None:
    """Not "disallowed by robots.txt": robots.txt could not be asked for because the name does not exist."""
    settings = FetchSettings(retries=1, respect_robots=respect_robots)
    with Fetcher(settings, 1 << 20, resolver=StaticResolver({})) as fetcher:
        for _ in range(2):  # nothing is remembered of the origin: the second try says the same
            with pytest.raises(DnsFailure, match=r"the name nowhere\.test does not resolve") as failed:
                fetcher.get("http://nowhere.test/face.jpg")
            assert failed.value.kind == "dns"


def test_the_system_resolver_failing_is_a_dns_failure_too() -> None:
    """.invalid never resolves (RFC 6761 §6.4), with or without a network."""
    with Fetcher(FetchSettings(retries=1), 1 << 20) as fetcher, pytest.raises(DnsFailure):
        fetcher.get("http://likeness-guard-test.invalid/face.jpg")


def test_a_refused_connection_is_transient_and_says_so() -> None:
    port = _free_port()
    settings = FetchSettings(retries=1, respect_robots=False, allow_private_networks=True)
    with Fetcher(settings, 1 << 20) as fetcher, pytest.raises(TransientFetchError, match="connection refused"):
        fetcher.get(f"http://127.0.0.1:{port}/face.jpg")


def test_robots_txt_on_a_refused_connection_means_stay_out_and_says_why() -> None:
    port = _free_port()
    settings = FetchSettings(retries=1, allow_private_networks=True)
    unreachable = r"robots\.txt unreachable \(cannot connect to 127\.0\.0\.1:\d+ \(connection refused\)\)"
    with Fetcher(settings, 1 << 20) as fetcher, pytest.raises(RobotsDisallowed, match=unreachable):
        fetcher.get(f"http://127.0.0.1:{port}/face.jpg")


def _free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
