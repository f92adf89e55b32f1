"""Frozen evidence, for the shells: capture a match's page, list and show cases, export and verify bundles.

The browser runs outside any transaction (a capture takes seconds): the match is read in one, the capture sealed
and recorded in another."""

from __future__ import annotations

import time
from pathlib import Path

from likeness.cases import evidence, review
from likeness.cases.blobs import FileBlobStore
from likeness.cases.evidence import CaptureRecord, CaseRecord, Verdict
from likeness.errors import NotFound
from likeness.services.app import App
from likeness.store.models import Media

__all__ = ["CaptureRecord", "CaseRecord", "Verdict", "capture", "export", "list_cases", "show", "verify"]


def blob_store(app: App) -> FileBlobStore:
    return FileBlobStore(app.settings.home / "evidence")


def capture(app: App, match_id: int, *, actor: str) -> CaptureRecord:
    """Freeze what match ``match_id``'s page shows now, sealed under its case's key; audited."""
    with app.store.transaction() as session:
        record = review.get_match(session, app.store.box, match_id)
        media = session.get(Media, record.media_id)
        if media is None:
            raise NotFound(f"match {match_id}: its media is gone")
        aim = evidence.target(record, media)
    started = time.monotonic()
    with evidence.browser(app.settings) as chromium:
        page = evidence.capture(chromium, aim.page_url, app.settings, aim.media_url)
    files = evidence.files_of(page, aim, app.settings.media)
    seconds = round(time.monotonic() - started, 3)
    with app.store.transaction() as session:
        return evidence.store_capture(session, blob_store(app), aim, files, seconds, actor=actor)


def list_cases(app: App) -> list[CaseRecord]:
    with app.store.transaction() as session:
        return evidence.list_cases(session)


def of_match(app: App, match_id: int) -> CaseRecord | None:
    """The match's case, with its captures; None before anything was frozen for it."""
    with app.store.transaction() as session:
        found = evidence.list_cases(session, match_id=match_id)
    return found[0] if found else None


def get_capture(app: App, capture_id: int) -> CaptureRecord:
    with app.store.transaction() as session:
        return evidence.get_capture(session, capture_id)


def capture_file(app: App, capture_id: int, name: str) -> bytes:
    """One frozen file of a capture, from the evidence store (never fetched again)."""
    with app.store.transaction() as session:
        return evidence.frozen_file(session, blob_store(app), capture_id, name)


def show(app: App, case_id: int) -> CaseRecord:
    with app.store.transaction() as session:
        found = evidence.list_cases(session, case_id)
    if not found:
        raise NotFound(f"no case {case_id}")
    return found[0]


def export(app: App, case_id: int, out: Path, capture_id: int | None = None) -> int:
    """Write the case's bundle to ``out`` from the evidence store; returns its size in bytes."""
    with app.store.transaction() as session:
        data = evidence.load_bundle(session, blob_store(app), case_id, capture_id)
    out.write_bytes(data)
    return len(data)


def verify(app: App, bundle: Path) -> tuple[Verdict, CaptureRecord | None]:
    """Check a bundle (EvidenceAltered if anything changed); also: signed by us, and recorded here?"""
    public = evidence.public_key_text(evidence.signing_key(app.store.box.audit_key))
    verdict = evidence.verify(bundle.read_bytes(), public)
    with app.store.transaction() as session:
        found = evidence.recorded(session, verdict.manifest_sha256)
    return verdict, found
