"""Protecting images by their hash (hashed here, only the hash stored), banks, withdrawal, hash lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from likeness.analyze import pdq
from likeness.errors import LikenessError
from likeness.match import hashes as hash_match
from likeness.media import decode
from likeness.registry import hashes as registry
from likeness.registry import hashlists
from likeness.services.app import App


@dataclass(frozen=True)
class HashAdded:
    file: str
    hash_id: int | None
    pdq_hex: str | None
    quality: int | None
    created: bool
    catalogue_matches: int
    error: str | None = None


def add_files(app: App, bank: str, files: list[Path], submission: str | None = None) -> list[HashAdded]:
    return [added for path in files for added in _add_file(app, bank, path, submission)]


def _add_file(app: App, bank: str, path: Path, submission: str | None) -> list[HashAdded]:
    """One hash for a picture; for a video or animation one per sampled frame, grouped as one submission."""
    try:
        media = decode(path.read_bytes(), app.settings.media)
    except (LikenessError, OSError) as exc:
        return [HashAdded(str(path), None, None, None, False, 0, error=str(exc))]
    frames = media.each_frame()
    if len(frames) > 1:
        submission = submission or f"video:{path.name}"
    hashed = [(f"{path}#frame{f.index}" if len(frames) > 1 else str(path), *pdq(f.pixels)) for f in frames]
    minimum = app.settings.hashes.pdq_min_quality
    refused = [
        HashAdded(
            label,
            None,
            digest.hex(),
            quality,
            False,
            0,
            error=f"PDQ quality {quality} is under {minimum}: too little detail to match reliably; not stored",
        )
        for label, digest, quality in hashed
        if quality < minimum
    ]
    kept = [(label, digest, quality) for label, digest, quality in hashed if quality >= minimum]
    if not kept:
        return refused
    added, found = _store(app, bank, [(digest, quality) for _, digest, quality in kept], submission)
    # the file's catalogue matches are reported once, on its first stored hash
    stored = [
        HashAdded(label, hash_id, digest.hex(), quality, created, found if n == 0 else 0)
        for n, ((label, digest, quality), (hash_id, created)) in enumerate(zip(kept, added, strict=True))
    ]
    return stored + refused


def _store(
    app: App, bank: str, entries: list[tuple[bytes, int | None]], submission: str | None
) -> tuple[list[tuple[int, bool]], int]:
    """Store hashes in one transaction and search the catalogue for each new one; (id, created) and matches."""
    with app.store.transaction() as session:
        added = [registry.add_hash(session, bank, digest, quality, submission) for digest, quality in entries]
        new = [hash_id for hash_id, created in added if created]
        found = hash_match.search_catalogue(session, new, app.settings.hashes) if new else 0
    return added, found


def import_list(app: App, bank: str, path: Path, fmt: str, submission: str | None = None) -> tuple[int, int, int]:
    """Import a hash list; returns (new hashes, already present, catalogue matches)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LikenessError(f"{path}: {exc}") from exc
    entries = hashlists.parse(text, fmt)
    added, found = _store(app, bank, [(e.digest, e.quality) for e in entries], submission)
    new = sum(created for _, created in added)
    return new, len(added) - new, found


def export_list(app: App, bank: str, fmt: str) -> str:
    with app.store.transaction() as session:
        rows = registry.hashes_in(session, bank)
    return hashlists.render([(h.digest, h.quality, str(h.id)) for h in rows], fmt)


def withdraw(app: App, hash_ids: list[int] | None = None, submission: str | None = None) -> int:
    with app.store.transaction() as session:
        return registry.withdraw(session, hash_ids=hash_ids, submission=submission)


def configure_bank(
    app: App, name: str, *, enabled: bool | None = None, negative: bool | None = None, max_distance: int | None = None
) -> registry.BankInfo:
    with app.store.transaction() as session:
        return registry.configure_bank(
            session,
            name,
            app.settings.hashes.pdq_max_distance,
            enabled=enabled,
            negative=negative,
            max_distance=max_distance,
        )


def list_banks(app: App) -> list[registry.BankInfo]:
    with app.store.transaction() as session:
        return registry.banks(session)
