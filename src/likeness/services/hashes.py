"""Protecting an image by its hash: the image is hashed here and only the hash is stored."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from likeness.analyze import pdq
from likeness.errors import LikenessError
from likeness.match import hashes as hash_match
from likeness.media import decode
from likeness.registry import hashes as registry
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


def add_files(app: App, bank: str, files: list[Path]) -> list[HashAdded]:
    return [_add_file(app, bank, path) for path in files]


def _add_file(app: App, bank: str, path: Path) -> HashAdded:
    try:
        digest, quality = pdq(decode(path.read_bytes(), app.settings.media).pixels)
    except (LikenessError, OSError) as exc:
        return HashAdded(str(path), None, None, None, False, 0, error=str(exc))
    if quality < app.settings.hashes.pdq_min_quality:
        return HashAdded(
            str(path),
            None,
            digest.hex(),
            quality,
            False,
            0,
            error=f"PDQ quality {quality} is under {app.settings.hashes.pdq_min_quality}: "
            "too little detail to match reliably; not stored",
        )
    with app.store.transaction() as session:
        hash_id, created = registry.add_hash(session, bank, digest, quality)
        found = hash_match.search_catalogue(session, hash_id, app.settings.hashes) if created else 0
    return HashAdded(str(path), hash_id, digest.hex(), quality, created, found)


def list_banks(app: App) -> list[registry.BankInfo]:
    with app.store.transaction() as session:
        return registry.banks(session)
