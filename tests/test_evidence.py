"""Frozen evidence in real Chromium (the system's, /usr/bin/chromium) against page servers on loopback.

One page server is the page being captured (allowed by its exact host:port, evidence.allow_hosts); a second one on
another loopback port stands for the network around the scanner: the page, a redirect and a script point at it,
and at a private and a metadata address, and none of those requests may leave the browser."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from likeness.analyze import hashing
from likeness.cases import evidence as frozen
from likeness.cli.main import app as cli
from likeness.errors import BlockedAddress, EvidenceAltered
from likeness.registry.hashes import submission_for
from likeness.services import evidence, hashes, review
from likeness.services.app import App, open_app
from likeness.settings import EvidenceSettings, Settings, get_settings
from likeness.store.models import AuditEvent, Bank, EvidenceCase, Match, Media, ProtectedHash, Sighting
from tests import images
from tests.pageserver import Server

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium; .ci/run installs it)"
)
PICTURE = images.encode(images.astronaut()[::4, ::4], "PNG")


@pytest.fixture
def servers() -> Iterator[tuple[Server, Server]]:
    inner = Server({"/secret.png": (200, {"Content-Type": "image/png"}, PICTURE)})
    other = f"http://127.0.0.1:{inner.port}"
    html = f"""<!doctype html><html><head><title>post 7</title>
        <script src="http://169.254.169.254/latest/meta-data/"></script></head>
        <body><h1>a post</h1><img src="/pic.png">
        <img src="{other}/secret.png"><img src="http://10.1.2.3/x.png"><img src="/hop">
        <iframe src="http://[::1]:{inner.port}/secret.png"></iframe></body></html>""".encode()
    page = Server(
        {
            "/start": (302, {"Location": "/post/7"}, b""),
            "/post/7": (200, {"Content-Type": "text/html; charset=utf-8", "X-Served-By": "test"}, html),
            "/pic.png": (200, {"Content-Type": "image/png"}, PICTURE),
            "/hop": (302, {"Location": f"{other}/secret.png?via=redirect"}, b""),
        }
    )
    yield page, inner
    page.close()
    inner.close()


@pytest.fixture
def case_app(settings: Settings, servers: tuple[Server, Server]) -> Iterator[App]:
    page, _ = servers
    allowed = settings.model_copy(update={"evidence": EvidenceSettings(allow_hosts=[f"127.0.0.1:{page.port}"])})
    with open_app(allowed) as instance:
        yield instance


def _seed_match(app: App, page: Server) -> int:
    """A hash match on the picture, seen at the page server (rows as a scan writes them)."""
    digest, quality = hashing.pdq(images.astronaut()[::4, ::4])
    base = f"http://127.0.0.1:{page.port}"
    with app.store.transaction() as s:
        s.add(Bank(name="evidence-test"))
        s.flush()
        submission = submission_for(s, "a person's picture", create=True, actor="test")
        protected = ProtectedHash(
            bank="evidence-test", algorithm="pdq", digest=digest, quality=quality, submission=submission
        )
        media = Media(sha256=hashing.sha256(PICTURE), status="analyzed", format="png", pdq=digest, pdq_quality=quality,
                      provenance={"exif": "none"})  # fmt: skip
        s.add_all([protected, media])
        s.flush()
        url = f"{base}/pic.png"
        s.add(Sighting(media_id=media.id, location=url, location_hash=hashlib.sha256(url.encode()).digest(),
                       page_url=f"{base}/start", platform="test"))  # fmt: skip
        match = Match(kind="hash", hash_id=protected.id, media_id=media.id, score=1.0, tier="high", status="confirmed")
        s.add(match)
        s.flush()
        return match.id


def test_capture_freezes_every_file_signed_sealed_and_audited(
    case_app: App, servers: tuple[Server, Server], tmp_path: Path
) -> None:
    page, inner = servers
    match_id = _seed_match(case_app, page)
    started = time.monotonic()
    done = evidence.capture(case_app, match_id, actor="test")
    print(f"capture: {time.monotonic() - started:.2f} s, {done.bytes} bytes in {done.files} files")  # for the report

    out = tmp_path / "case.zip"
    size = evidence.export(case_app, done.case_id, out)
    print(f"bundle: {size} bytes")
    verdict, recorded = evidence.verify(case_app, out)
    assert verdict.ours and recorded is not None and recorded.id == done.id
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        capture = json.loads(z.read("files/capture.json"))
        match = json.loads(z.read("files/match.json"))
        shot, media, html = z.read("files/screenshot.png"), z.read("files/media"), z.read("files/page.html")
        mhtml = z.read("files/page.mhtml")
    wanted = {"capture.json", "match.json", "media", "page.html", "page.mhtml", "screenshot.png"}
    assert names == {"manifest.json", "manifest.sig.json", *(f"files/{n}" for n in wanted)}
    assert shot.startswith(b"\x89PNG") and b"a post" in html and b"MIME-Version" in mhtml[:200]
    assert media == PICTURE and match["captured_media"]["same_as_matched"] is True
    assert match["captured_media"]["pdq"] == match["media"]["pdq"] and match["score"] == 1.0
    assert capture["final_url"].endswith("/post/7") and capture["redirects"][0]["status"] == 302
    assert capture["headers"]["x-served-by"] == "test" and capture["fetched_at"]

    # the network around the scanner was never reached: the other loopback port, a redirect to it, RFC 1918,
    # IPv6 loopback, the metadata address
    assert inner.hits == []
    refused = {r["url"] for r in capture["refused"]}
    other = f"http://127.0.0.1:{inner.port}"
    assert {f"{other}/secret.png", f"{other}/secret.png?via=redirect", "http://10.1.2.3/x.png"} <= refused
    assert "http://169.254.169.254/latest/meta-data/" in refused
    assert f"http://[::1]:{inner.port}/secret.png" in refused

    # sealed: no file's bytes lie in the store in the clear; the capture is in the audit chain
    stored = b"".join(p.read_bytes() for p in (case_app.settings.home / "evidence").rglob("*") if p.is_file())
    assert PICTURE[100:164] not in stored and b"a post" not in stored
    with case_app.store.transaction() as s:
        actions = list(
            s.scalars(select(AuditEvent.action).where(AuditEvent.entity.like("evidence_%")).order_by(AuditEvent.seq))
        )
        assert actions == ["case.open", "evidence.capture"]
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.entity.like("evidence_%"))) == 2
        key_id = s.scalar(select(EvidenceCase.key_id))
        assert key_id is not None and case_app.store.box.key(key_id) is not None

    # the evidence is sealed under the key of whom the match concerns: their withdrawal leaves it unreadable
    hashes.withdraw(case_app, actor="test", submission="a person's picture")
    assert case_app.store.box.key(key_id) is None
    assert evidence.list_cases(case_app) == []


def test_any_changed_byte_of_a_bundle_fails_verify(
    case_app: App, servers: tuple[Server, Server], tmp_path: Path
) -> None:
    page, _ = servers
    match_id = _seed_match(case_app, page)
    env = {
        "LIKENESS_HOME": str(case_app.settings.home),
        "LIKENESS_DATABASE_URL": str(case_app.settings.database_url),
        "LIKENESS_EVIDENCE__ALLOW_HOSTS": json.dumps(case_app.settings.evidence.allow_hosts),
    }
    runner, out = CliRunner(), tmp_path / "case.zip"
    get_settings.cache_clear()
    try:
        captured = runner.invoke(cli, ["cases", "capture", str(match_id)], env=env)
        assert captured.exit_code == 0, captured.output
        done = json.loads(captured.output)
        exported = runner.invoke(cli, ["cases", "export", str(done["case"]), "--out", str(out)], env=env)
        assert exported.exit_code == 0, exported.output
        shown = runner.invoke(cli, ["cases", "show", str(done["case"])], env=env)
        assert json.loads(shown.output)["captures"][0]["manifest_sha256"] == done["manifest_sha256"]
    finally:
        get_settings.cache_clear()
    data = out.read_bytes()
    frozen.verify(data)
    # every byte of the zip's own structure (headers, names, central directory) and a spread through the contents
    positions = sorted(
        {*range(0, 120), *range(len(data) - 400, len(data)), *range(0, len(data), max(1, len(data) // 300))}
    )
    for at in positions:
        changed = bytearray(data)
        changed[at] ^= 0x01
        with pytest.raises(EvidenceAltered):
            frozen.verify(bytes(changed))
    with pytest.raises(EvidenceAltered):
        frozen.verify(data + b"\0")

    # the command line says so too: exit 0 when intact, 1 (with the reason) when not
    get_settings.cache_clear()
    intact = runner.invoke(cli, ["cases", "verify", str(out)], env=env)
    assert intact.exit_code == 0, intact.output
    assert "this installation" in intact.output and f"capture {done['capture']}" in intact.output
    bad = tmp_path / "bad.zip"
    shutil.copy(out, bad)
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    bad.write_bytes(bytes(raw))
    altered = runner.invoke(cli, ["cases", "verify", str(bad)], env=env)
    assert altered.exit_code == 1
    listed = runner.invoke(cli, ["cases", "list", "--format", "json"], env=env)
    get_settings.cache_clear()
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["captures"][0]["capture"] == done["capture"]


def test_a_page_on_a_private_address_not_allowed_is_refused(settings: Settings, servers: tuple[Server, Server]) -> None:
    """Without allow_hosts, the local page server itself is a private address: nothing is loaded at all."""
    page, _ = servers
    with open_app(settings) as instance:
        match_id = _seed_match(instance, page)
        with pytest.raises(BlockedAddress):
            evidence.capture(instance, match_id, actor="test")
    assert page.hits == []


def test_confirming_a_match_freezes_its_evidence(case_app: App, servers: tuple[Server, Server]) -> None:
    page, _ = servers
    match_id = _seed_match(case_app, page)
    with case_app.store.transaction() as s:
        s.execute(update(Match).where(Match.id == match_id).values(status="new"))
    assert not [c for c in evidence.list_cases(case_app) if c.match_id == match_id]
    review.set_status(case_app, match_id, "confirmed", actor="test")
    [case] = [c for c in evidence.list_cases(case_app) if c.match_id == match_id]
    assert case.captures and case.captures[0].files >= 4
