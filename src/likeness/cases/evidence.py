"""Frozen evidence: a match's page captured in headless Chromium, sealed into the evidence store, signed.

Why freeze: a page taken down or blocked before a notice is written leaves nothing to show. A capture keeps what
the page was when it was seen: a full-page screenshot, the HTML, an MHTML snapshot (CDP ``Page.captureSnapshot``:
the page with its sub-resources in one file), the final URL and redirect chain, the response headers, when it was
fetched; the media bytes with SHA-256 and PDQ; and from the database the match's score, crop and provenance.

Signing: Ed25519 (``cryptography``), the private key derived (HKDF-SHA256) from the audit chain's MAC key, itself
derived from the master key; so every installation signs with one stable key and anyone given its public key can
check a bundle without any secret. The manifest (every file with its SHA-256 and size) is signed and its SHA-256
recorded in the audit chain at capture time.

The browser obeys the SSRF guard (fetch/guard.py): every request a page makes passes ``RequestGate`` (a
Playwright route) and is aborted unless its host is public by the guard's rules, or its exact ``host:port`` is in
``evidence.allow_hosts`` (a page server on a private network meant to be captured; other ports and addresses there
stay refused). The gate fetches each request itself and follows redirects itself, judging every hop: Chromium
follows a redirect inside its network stack without asking the route again (tests/test_evidence.py caught a
redirect to a private port getting through that way). WebSockets are closed and service workers blocked, so
nothing reaches the network around the route. The gate resolves a name to judge it and Playwright's fetch resolves
it again: a name that rebinds to a private address between the two could still be reached (the HTTP fetcher has no
such gap; a resolving proxy in front of the browser would close it). Bodies are held in memory while fetched.

Bundles (``export``) are deterministic zips (stored, fixed timestamps, sorted names): ``verify`` checks the
signature and every file's SHA-256, then rebuilds the zip from the checked contents and compares it byte for byte,
so a change to any byte of the bundle, metadata included, is detected.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import socket
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from likeness.cases.blobs import BlobStore, get_sealed, put_sealed
from likeness.errors import (
    BlockedAddress,
    ConfigurationError,
    Conflict,
    EvidenceAltered,
    FetchError,
    InvalidInput,
    NotFound,
    UnsafeUrl,
)
from likeness.fetch.guard import Guard
from likeness.registry.hashes import submission_key
from likeness.registry.subjects import subject_key
from likeness.settings import MediaLimits, Settings
from likeness.store import audit
from likeness.store.crypto import DataKey, box_of
from likeness.store.models import EvidenceCapture, EvidenceCase, Match

_SIGNING_INFO = b"likeness/evidence-manifest/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the zip format's earliest date: a bundle's bytes depend on its contents only
_LAUNCH_ARGS = [  # no traffic of the browser's own (updates, sync, prefetch) beside the page's, all routed
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--dns-prefetch-disable",
    "--no-first-run",
    "--no-pings",
]


@dataclass
class Page:
    """What the browser saw of one URL (and of the media it shows)."""

    url: str
    final_url: str
    status: int | None
    redirects: list[dict[str, Any]]
    headers: dict[str, str]
    fetched_at: str
    seconds: float
    html: bytes
    mhtml: bytes
    screenshot: bytes
    media_url: str | None = None
    media: bytes | None = None
    media_headers: dict[str, str] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)  # aborted by the SSRF guard, and why
    failed: list[dict[str, str]] = field(default_factory=list)  # allowed but not answered
    browser: str = ""


class RequestGate:
    """Judges every request the page makes; ``refused`` keeps what was aborted and why, for the capture record."""

    def __init__(self, guard: Guard, allow_hosts: list[str], max_redirects: int = 5) -> None:
        self.guard = guard
        self.allow_hosts = {h.lower() for h in allow_hosts}
        self.max_redirects = max_redirects
        self.refused: list[dict[str, str]] = []
        self.failed: list[dict[str, str]] = []  # allowed, but not answered
        self.chains: dict[str, tuple[list[dict[str, Any]], str]] = {}  # requested URL: (redirects, final URL)

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be requested, or None. Names are resolved and every address judged."""
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return None  # in the page itself: no request leaves the browser
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if f"{(parts.hostname or '').lower()}:{port}" in self.allow_hosts:
                return None
            host = self.guard.check_url(url)
            if not _is_address(host):
                for address in _resolve(host, port):
                    self.guard.check_address(address, f"{host} resolves to {address}")
        except (UnsafeUrl, BlockedAddress, FetchError, ValueError) as exc:
            return str(exc)
        return None

    def route(self, route: Any) -> None:
        """Fetch the request here, following redirects ourselves and judging every hop: Chromium follows a
        redirect inside its network stack, past the route, so it must never be handed one."""
        from playwright.sync_api import Error

        first = url = route.request.url
        hops: list[dict[str, Any]] = []
        while (why := self.refusal(url)) is None:
            try:
                response = route.fetch(url=url, max_redirects=0)
            except (
                Error
            ) as exc:  # the server is down or hung up: the page shows the resource missing, as Chromium would
                route.abort("failed")
                self.failed.append({"url": url, "error": exc.message.splitlines()[0]})
                return
            location = response.headers.get("location")
            if not (300 <= response.status < 400 and location):
                self.chains[first] = (hops, url)
                route.fulfill(response=response)
                return
            hops.append({"url": url, "status": response.status, "location": location})
            if len(hops) > self.max_redirects:
                why = f"more than {self.max_redirects} redirects"
                break
            url = urljoin(url, location)
        self.refused.append({"url": url, "reason": why, **({"from": first} if hops else {})})
        route.abort("blockedbyclient")


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(f"{host} does not resolve: {exc}") from exc
    return sorted({str(info[4][0]) for info in infos})


@contextmanager
def browser(settings: Settings) -> Iterator[Any]:
    """The system's Chromium under Playwright (never a downloaded browser)."""
    from playwright.sync_api import Error, sync_playwright

    path = settings.evidence.chromium
    if not path.exists():
        raise ConfigurationError(
            f"no Chromium at {path}: install it (apt-get install chromium) or set LIKENESS_EVIDENCE__CHROMIUM"
        )
    with sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=str(path), args=_LAUNCH_ARGS)
        except Error as exc:
            raise ConfigurationError(f"Chromium at {path} did not start: {exc.message.splitlines()[0]}") from exc
        try:
            yield chromium
        finally:
            chromium.close()


def capture(chromium: Any, url: str, settings: Settings, media_url: str | None = None) -> Page:
    """Load ``url`` (and then ``media_url``) in a fresh context whose every request passes the gate."""
    ev = settings.evidence
    gate = RequestGate(Guard(settings.fetch.allow_private_networks), ev.allow_hosts, settings.fetch.max_redirects)
    context = chromium.new_context(
        viewport={"width": ev.viewport_width, "height": ev.viewport_height},
        user_agent=settings.fetch.user_agent,
        service_workers="block",  # a service worker's fetches would not pass the route
        accept_downloads=False,
    )
    try:
        context.route("**/*", gate.route)
        context.route_web_socket("**/*", lambda ws: ws.close())
        context.set_default_timeout(ev.timeout_s * 1000)
        page = _load(context.new_page(), url, gate, chromium.version)
        page.refused, page.failed = gate.refused, gate.failed
        if media_url:
            _load_media(context.new_page(), media_url, page)
        return page
    finally:
        context.close()


def _load(tab: Any, url: str, gate: RequestGate, version: str) -> Page:
    from playwright.sync_api import Error

    if (why := gate.refusal(url)) is not None:
        raise BlockedAddress(why)
    fetched_at, started = datetime.now(UTC).isoformat(), time.monotonic()
    try:
        response = tab.goto(url, wait_until="load")
    except Error as exc:
        raise FetchError(f"{url}: the browser could not load it: {exc.message.splitlines()[0]}") from exc
    with contextlib.suppress(Error):  # a page that never stops polling is captured as it stands after 5 s
        tab.wait_for_load_state("networkidle", timeout=5000)
    if response is None:
        raise FetchError(f"{url}: the browser got no response")
    html = tab.content().encode()
    cdp = tab.context.new_cdp_session(tab)
    mhtml = cdp.send("Page.captureSnapshot", {"format": "mhtml"})["data"].encode()
    screenshot = tab.screenshot(full_page=True, type="png")
    redirects, final_url = gate.chains.get(url, ([], tab.url))
    return Page(
        url,
        final_url,
        response.status,
        redirects,
        response.all_headers(),
        fetched_at,
        round(time.monotonic() - started, 3),
        html,
        mhtml,
        screenshot,
        browser=version,
    )


def _load_media(tab: Any, media_url: str, page: Page) -> None:
    """The media's own bytes, as the browser gets them (through the same gate)."""
    from playwright.sync_api import Error

    try:
        response = tab.goto(media_url)
    except Error as exc:
        if all(r["url"] != media_url for r in page.refused):  # the gate's refusal says more than the abort
            page.refused.append({"url": media_url, "reason": exc.message.splitlines()[0]})
        return
    if response is not None and response.ok:
        page.media_url, page.media, page.media_headers = media_url, response.body(), response.all_headers()


# --- manifest, signature, bundle -------------------------------------------------------------------------------


def signing_key(audit_key: bytes) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SIGNING_INFO).derive(audit_key)
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(header: dict[str, Any], files: dict[str, bytes]) -> bytes:
    """Canonical JSON (sorted keys, no spaces): the bytes signed and hashed."""
    listing = [{"name": name, "sha256": sha256(data), "bytes": len(data)} for name, data in sorted(files.items())]
    return json.dumps({**header, "files": listing}, sort_keys=True, separators=(",", ":")).encode()


def sign(key: Ed25519PrivateKey, manifest: bytes) -> bytes:
    signature = base64.b64encode(key.sign(manifest)).decode()
    record = {"algorithm": "Ed25519", "public_key": public_key_text(key), "signature": signature}
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def bundle(manifest: bytes, signature: bytes, files: dict[str, bytes]) -> bytes:
    """The deterministic zip: the same contents always give the same bytes."""
    entries = {MANIFEST: manifest, SIGNATURE: signature, **{f"files/{n}": d for n, d in files.items()}}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.create_system, info.external_attr = 3, 0o644 << 16
            archive.writestr(info, entries[name])
    return out.getvalue()


@dataclass(frozen=True)
class Verdict:
    manifest: dict[str, Any]
    public_key: str
    ours: bool | None  # signed with this installation's key (None: not checked)
    manifest_sha256: str


def verify(data: bytes, expected_key: str | None = None) -> Verdict:
    """Raise EvidenceAltered unless the bundle is exactly what was signed; ``expected_key``: the signer's."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
    # whatever a damaged zip makes zipfile raise (a flipped flag bit reads as "encrypted": RuntimeError)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        KeyError,
        EOFError,
        RuntimeError,
        zlib.error,
    ) as exc:
        raise EvidenceAltered(f"not a readable bundle: {exc}") from exc
    manifest_raw, signature_raw = entries.pop(MANIFEST, None), entries.pop(SIGNATURE, None)
    if manifest_raw is None or signature_raw is None:
        raise EvidenceAltered(f"the bundle lacks {MANIFEST} or {SIGNATURE}")
    public = _check_signature(manifest_raw, signature_raw)
    manifest = _load_json(manifest_raw, MANIFEST)
    files = _check_files(manifest, entries)
    if bundle(manifest_raw, signature_raw, files) != data:
        raise EvidenceAltered("the bundle's bytes differ from the signed contents (zip metadata was changed)")
    ours = None if expected_key is None else public == expected_key
    return Verdict(manifest, public, ours, sha256(manifest_raw))


def _check_signature(manifest: bytes, signature: bytes) -> str:
    record = _load_json(signature, SIGNATURE)
    try:
        if record.get("algorithm") != "Ed25519":
            raise ValueError(f"unknown algorithm {record.get('algorithm')!r}")
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(record["public_key"], validate=True))
        key.verify(base64.b64decode(record["signature"], validate=True), manifest)
    except (InvalidSignature, ValueError, KeyError, TypeError) as exc:
        raise EvidenceAltered(f"the manifest's signature does not verify ({exc or 'bad signature'})") from exc
    return str(record["public_key"])


def _check_files(manifest: dict[str, Any], entries: dict[str, bytes]) -> dict[str, bytes]:
    files = {name.removeprefix("files/"): data for name, data in entries.items()}
    listed = {f["name"]: f for f in manifest.get("files", [])}
    if set(listed) != set(files) or len(files) != len(entries):
        raise EvidenceAltered(f"the bundle's files differ from the manifest: {sorted(set(listed) ^ set(files))}")
    for name, data in files.items():
        if sha256(data) != listed[name]["sha256"] or len(data) != listed[name]["bytes"]:
            raise EvidenceAltered(f"{name}: its SHA-256 differs from the manifest's")
    return files


def _load_json(raw: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvidenceAltered(f"{name} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise EvidenceAltered(f"{name} is not a JSON object")
    return value


# --- cases: what a capture freezes, sealed into the evidence store and recorded ---------------------------------


@dataclass(frozen=True)
class Target:
    """What to capture for a match: the page showing the media and the media's own URL, and what was matched."""

    match_id: int
    page_url: str
    media_url: str  # the same as page_url when the media was linked directly
    match: dict[str, Any]  # match.json: score, tier, kind, provenance, the recorded hashes


@dataclass(frozen=True)
class CaptureRecord:
    id: int
    case_id: int
    match_id: int
    url: str
    manifest_sha256: str
    files: int
    bytes: int
    seconds: float
    captured_at: datetime


@dataclass(frozen=True)
class CaseRecord:
    id: int
    match_id: int
    sealed: bool  # False: the case's key was shredded, its evidence unreadable
    created_at: datetime
    captures: list[CaptureRecord]


def target(record: Any, media: Any) -> Target:
    """From a MatchRecord (cases/review.py) and its Media row: the first web place it was seen."""
    web = [s for s in record.sightings if s.url.startswith(("http://", "https://"))]
    if not web:
        raise InvalidInput(f"match {record.id} was never seen on the web: nothing to capture")
    seen = web[0]
    match = {
        "match": record.id,
        "kind": record.kind,
        "score": record.score,
        "tier": record.tier,
        "status": record.status,
        "frame": record.frame,
        "face_box": record.face_box,
        "detail": record.detail,
        "hash_id": record.hash_id,
        "bank": record.bank,
        "provenance": record.provenance,
        "nsfw": record.nsfw,
        "media": {"sha256": media.sha256, "pdq": media.pdq.hex() if media.pdq else None, "format": media.format},
        "seen": {
            "url": seen.url,
            "page_url": seen.page_url,
            "platform": seen.platform,
            "author": seen.author,
            "posted_at": seen.posted_at.isoformat() if seen.posted_at else None,
            "first_seen": seen.first_seen.isoformat(),
            "last_seen": seen.last_seen.isoformat(),
        },
    }
    page_url = seen.page_url or seen.url
    return Target(record.id, page_url, seen.url, match)


def files_of(page: Page, aim: Target, limits: MediaLimits) -> dict[str, bytes]:
    """Every file a capture keeps, by name in the bundle."""
    media = page.media
    files = {"screenshot.png": page.screenshot, "page.html": page.html, "page.mhtml": page.mhtml}
    found: dict[str, Any] = {"url": page.media_url, "sha256": None, "pdq": None, "pdq_quality": None}
    if media is not None:
        files["media"] = media
        found |= _hashes(media, limits)
        crop = _crop(media, aim.match.get("face_box"), limits)
        if crop is not None:
            files["crop.png"] = crop
    recorded = aim.match["media"]["sha256"]
    match = {**aim.match, "captured_media": {**found, "same_as_matched": found["sha256"] == recorded}}
    capture = {
        "url": page.url,
        "final_url": page.final_url,
        "status": page.status,
        "redirects": page.redirects,
        "headers": page.headers,
        "fetched_at": page.fetched_at,
        "seconds": page.seconds,
        "browser": page.browser,
        "media_url": page.media_url,
        "media_headers": page.media_headers,
        "refused": page.refused,
        "failed": page.failed,
    }
    files["capture.json"] = _json(capture)
    files["match.json"] = _json(match)
    return files


def _hashes(data: bytes, limits: MediaLimits) -> dict[str, Any]:
    from likeness.analyze import hashing
    from likeness.errors import MediaError
    from likeness.media.decode import decode

    out: dict[str, Any] = {"sha256": hashing.sha256(data), "pdq": None, "pdq_quality": None}
    try:
        digest, quality = hashing.pdq(decode(data, limits).pixels)
    except MediaError as exc:
        return {**out, "pdq_error": str(exc)}
    return {**out, "pdq": digest.hex(), "pdq_quality": quality}


def _crop(data: bytes, box: Any, limits: MediaLimits) -> bytes | None:
    """The matched face, cut from the captured media (boxes are in the media's own pixels)."""
    if not box:
        return None
    from PIL import Image

    from likeness.errors import MediaError
    from likeness.media.decode import decode

    try:
        media = decode(data, limits)
    except MediaError:
        return None
    x, y, w, h = box
    scale = media.pixels.shape[1] / media.width if media.width else 1.0
    part = media.pixels[int(y * scale) : int((y + h) * scale), int(x * scale) : int((x + w) * scale)]
    if part.size == 0:
        return None
    out = io.BytesIO()
    Image.fromarray(part).save(out, format="PNG")
    return out.getvalue()


def _json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, indent=2, default=str).encode()


def open_case(session: Session, match_id: int, *, actor: str) -> tuple[EvidenceCase, DataKey]:
    """The match's case, made (audited) on first capture. Its key is the key of whom the match concerns (the
    subject's, or the submission's for a hash match), so their withdrawal leaves the evidence unreadable with no
    step of its own; a key of its own when the match concerns nobody enrolled."""
    box = box_of(session)
    case = session.scalars(select(EvidenceCase).where(EvidenceCase.match_id == match_id).with_for_update()).first()
    if case is not None:
        key = box.key(case.key_id)
        if key is None:
            raise Conflict(f"case {case.id}: its key was shredded; its evidence can no longer be added to")
        return case, key
    key = _owner_key(session, match_id)
    case = EvidenceCase(match_id=match_id, key_id=key.id)
    session.add(case)
    session.flush()
    audit.record(session, "case.open", "evidence_case", case.id, {"match": match_id}, actor=actor)
    return case, key


def _owner_key(session: Session, match_id: int) -> DataKey:
    box = box_of(session)
    match = session.get(Match, match_id)
    if match is None:
        raise NotFound(f"no match {match_id}")
    key = None
    if match.subject_id is not None:
        key = subject_key(session, box, match.subject_id)
    elif match.hash_id is not None:
        key = submission_key(session, box, match.hash_id)
    return key or box.new_key(session)


def store_capture(
    session: Session, blobs: BlobStore, aim: Target, files: dict[str, bytes], seconds: float, *, actor: str
) -> CaptureRecord:
    """Seal every file, sign the manifest, record the capture and its manifest's SHA-256 in the audit chain."""
    case, key = open_case(session, aim.match_id, actor=actor)
    box = box_of(session)
    captured_at = datetime.now(UTC)
    header = {
        "version": 1,
        "case": case.id,
        "match": aim.match_id,
        "url": aim.page_url,
        "captured_at": captured_at.isoformat(),
    }
    manifest = manifest_bytes(header, files)
    signature = sign(signing_key(box.audit_key), manifest)
    addresses = {name: put_sealed(blobs, key, data) for name, data in files.items()}
    stored = json.dumps({"manifest": manifest.decode(), "signature": signature.decode(), "blobs": addresses})
    size = sum(len(d) for d in files.values())
    row = EvidenceCapture(
        case_id=case.id,
        url=aim.page_url,
        manifest_blob=put_sealed(blobs, key, stored.encode()),
        manifest_sha256=sha256(manifest),
        signature=signature.decode(),
        files=len(files),
        bytes=size,
        seconds=seconds,
        captured_at=captured_at,
    )
    session.add(row)
    session.flush()
    details = {
        "case": case.id,
        "match": aim.match_id,
        "manifest_sha256": row.manifest_sha256,
        "files": len(files),
        "bytes": size,
    }
    audit.record(
        session,
        "evidence.capture",
        "evidence_capture",
        row.id,
        details,
        actor=actor,
        personal={"url": aim.page_url},
        owner=key,
    )
    return _capture_record(row, aim.match_id)


def load_bundle(session: Session, blobs: BlobStore, case_id: int, capture_id: int | None = None) -> bytes:
    """The case's capture (the latest unless ``capture_id``) as a bundle, from the store: nothing re-fetched."""
    case = session.get(EvidenceCase, case_id)
    if case is None:
        raise NotFound(f"no case {case_id}")
    key = box_of(session).key(case.key_id)
    if key is None:
        raise Conflict(f"case {case_id}: its key was shredded; its evidence is unreadable")
    query = select(EvidenceCapture).where(EvidenceCapture.case_id == case_id)
    if capture_id is not None:
        query = query.where(EvidenceCapture.id == capture_id)
    row = session.scalars(query.order_by(EvidenceCapture.id.desc())).first()
    if row is None:
        raise NotFound(f"case {case_id} has no capture" + (f" {capture_id}" if capture_id else ""))
    manifest, signature, files = _frozen(blobs, key, row, case_id)
    return bundle(manifest, signature, files)


def _frozen(
    blobs: BlobStore, key: DataKey, row: EvidenceCapture, case_id: int
) -> tuple[bytes, bytes, dict[str, bytes]]:
    stored = json.loads(get_sealed(blobs, key, row.manifest_blob))
    manifest = stored["manifest"].encode()
    if sha256(manifest) != row.manifest_sha256:
        raise EvidenceAltered(f"case {case_id}: the stored manifest differs from the one recorded at capture")
    files = {name: get_sealed(blobs, key, address) for name, address in stored["blobs"].items()}
    return manifest, stored["signature"].encode(), files


def frozen_file(session: Session, blobs: BlobStore, capture_id: int, name: str) -> bytes:
    """One file of a capture (``screenshot.png``, ``capture.json``, ...), opened with its case's key."""
    row = session.get(EvidenceCapture, capture_id)
    case = session.get(EvidenceCase, row.case_id) if row is not None else None
    if row is None or case is None:
        raise NotFound(f"no capture {capture_id}")
    key = box_of(session).key(case.key_id)
    if key is None:
        raise Conflict(f"case {case.id}: its key was shredded; its evidence is unreadable")
    files = _frozen(blobs, key, row, case.id)[2]
    if name not in files:
        raise NotFound(f"capture {capture_id} has no {name}")
    return files[name]


def frozen_media(session: Session, blobs: BlobStore, match_id: int) -> bytes | None:
    """The media bytes the latest capture of the match's case froze; None without a readable capture of them."""
    case = session.scalar(select(EvidenceCase).where(EvidenceCase.match_id == match_id))
    key = box_of(session).key(case.key_id) if case is not None else None
    if case is None or key is None:
        return None
    query = select(EvidenceCapture).where(EvidenceCapture.case_id == case.id).order_by(EvidenceCapture.id.desc())
    row = session.scalars(query).first()
    return None if row is None else _frozen(blobs, key, row, case.id)[2].get("media")


def list_cases(session: Session, case_id: int | None = None, match_id: int | None = None) -> list[CaseRecord]:
    query = select(EvidenceCase).order_by(EvidenceCase.id)
    if case_id is not None:
        query = query.where(EvidenceCase.id == case_id)
    if match_id is not None:
        query = query.where(EvidenceCase.match_id == match_id)
    cases = list(session.scalars(query))
    rows = session.scalars(
        select(EvidenceCapture).where(EvidenceCapture.case_id.in_([c.id for c in cases])).order_by(EvidenceCapture.id)
    )
    by_case: dict[int, list[CaptureRecord]] = {}
    match_of = {c.id: c.match_id for c in cases}
    for row in rows:
        by_case.setdefault(row.case_id, []).append(_capture_record(row, match_of[row.case_id]))
    return [CaseRecord(c.id, c.match_id, c.key_id is not None, c.created_at, by_case.get(c.id, [])) for c in cases]


def recorded(session: Session, manifest_sha256: str) -> CaptureRecord | None:
    """The capture whose manifest this is, if this installation recorded it."""
    row = session.scalars(select(EvidenceCapture).where(EvidenceCapture.manifest_sha256 == manifest_sha256)).first()
    if row is None:
        return None
    case = session.get(EvidenceCase, row.case_id)
    return _capture_record(row, case.match_id if case else 0)


def get_capture(session: Session, capture_id: int) -> CaptureRecord:
    row = session.get(EvidenceCapture, capture_id)
    case = session.get(EvidenceCase, row.case_id) if row is not None else None
    if row is None or case is None:
        raise NotFound(f"no capture {capture_id}")
    return _capture_record(row, case.match_id)


def _capture_record(row: EvidenceCapture, match_id: int) -> CaptureRecord:
    return CaptureRecord(
        row.id, row.case_id, match_id, row.url, row.manifest_sha256, row.files, row.bytes, row.seconds, row.captured_at
    )
