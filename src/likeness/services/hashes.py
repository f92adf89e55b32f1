"""Protecting images by their hash (hashed here, only the hash stored), banks, withdrawal, hash lists.

A submission label (``--submission``, or the file name that groups a video's features) is personal: it is sealed
with the submission's own key (registry/hashes.py) and withdrawn with its last hash.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from likeness.analyze import PDQ_ALGORITHM, pdq, vpdq
from likeness.analyze.vpdq import VPDQ_ALGORITHM
from likeness.errors import LikenessError
from likeness.match import hashes as hash_match
from likeness.media import decode, sniff
from likeness.media.decode import VIDEO_FORMATS
from likeness.registry import hashes as registry
from likeness.registry import hashlists
from likeness.registry.hashes import StoredHash
from likeness.services.app import App
from likeness.settings import MediaLimits
from likeness.store import keys


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
    """One PDQ for a picture; vPDQ features (a PDQ per second) for a video, a PDQ per sampled frame for an
    animation, grouped as one submission."""
    try:
        data = path.read_bytes()
        entries = _hash_file(data, app.settings.media, submission, f"video:{path.name}")
    except (LikenessError, OSError) as exc:
        return [HashAdded(str(path), None, None, None, False, 0, error=str(exc))]

    def label(e: StoredHash) -> str:
        return str(path) if e.frame is None else f"{path}#frame{e.frame}"

    minimum = app.settings.hashes.pdq_min_quality
    refused = [
        HashAdded(
            label(e),
            None,
            e.digest.hex(),
            e.quality,
            False,
            0,
            error=f"PDQ quality {e.quality} is under {minimum}: too little detail to match reliably; not stored",
        )
        for e in entries
        if (e.quality or 0) < minimum
    ]
    kept = [e for e in entries if (e.quality or 0) >= minimum]
    if not kept:
        return refused
    added, found = _store(app, bank, kept)
    # the file's catalogue matches are reported once, on its first stored hash
    stored = [
        HashAdded(label(e), hash_id, e.digest.hex(), e.quality, created, found if n == 0 else 0)
        for n, (e, (hash_id, created)) in enumerate(zip(kept, added, strict=True))
    ]
    return stored + refused


def _hash_file(data: bytes, limits: MediaLimits, submission: str | None, group: str) -> list[StoredHash]:
    """A picture: its PDQ. A video: its vPDQ features; an animation: a PDQ per sampled frame; each of those is one
    submission (``group`` unless one is given)."""
    if sniff(data) in VIDEO_FORMATS:
        features = vpdq.hash_video(data, limits)
        return [
            StoredHash(0, f.digest, f.quality, submission or group, VPDQ_ALGORITHM, f.frame, f.time_s) for f in features
        ]
    frames = decode(data, limits).each_frame()
    if len(frames) == 1:
        return [StoredHash(0, *pdq(frames[0].pixels), submission)]
    return [StoredHash(0, *pdq(f.pixels), submission or group, PDQ_ALGORITHM, f.index, f.time_s) for f in frames]


def _store(app: App, bank: str, entries: list[StoredHash]) -> tuple[list[tuple[int, bool]], int]:
    """Store hashes in one transaction and search the catalogue for the new ones; (id, created) and matches.
    ``entries`` carry their submission's label; they are stored with the submission's id."""
    with app.store.transaction() as session:
        labels = {e.submission for e in entries if e.submission is not None}
        ids = {label: registry.submission_for(session, label, create=True) for label in labels}
        stored = [replace(e, submission=ids[e.submission]) if e.submission is not None else e for e in entries]
        added = [registry.add_hash(session, bank, entry) for entry in stored]
        new = [hash_id for hash_id, created in added if created]
        found = hash_match.search_catalogue(session, new, app.settings.hashes) if new else 0
    return added, found


def import_list(app: App, bank: str, path: Path, fmt: str, submission: str | None = None) -> tuple[int, int, int]:
    """Import a hash list, or a vPDQ file (one protected video); returns (new, already present, catalogue
    matches)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LikenessError(f"{path}: {exc}") from exc
    if fmt == "vpdq":
        features = vpdq.loads(text)
        submission = submission or f"vpdq:{path.name}"
        entries = [StoredHash(0, f.digest, f.quality, submission, VPDQ_ALGORITHM, f.frame, f.time_s) for f in features]
    else:
        entries = [StoredHash(0, e.digest, e.quality, submission) for e in hashlists.parse(text, fmt)]
    first: dict[bytes, StoredHash] = {}
    for entry in entries:  # a video repeats a still shot's hash: it is one protected hash, at its first frame
        first.setdefault(entry.digest, entry)
    added, found = _store(app, bank, list(first.values()))
    new = sum(created for _, created in added)
    return new, len(added) - new, found


def export_list(app: App, bank: str, fmt: str, submission: str | None = None) -> str:
    if fmt == "vpdq" and submission is None:
        raise LikenessError("a vPDQ file holds one video: name its --submission")
    with app.store.transaction() as session:
        rows = registry.hashes_in(session, bank, submission)
    if fmt == "vpdq":
        return vpdq.dumps([vpdq.Feature(h.frame or 0, h.quality or 0, h.digest, h.time_s or 0.0) for h in rows])
    return hashlists.render([(h.digest, h.quality, str(h.id)) for h in rows], fmt)


def withdraw(app: App, hash_ids: list[int] | None = None, submission: str | None = None) -> int:
    """Hashes go in one transaction; then the key and label of each submission left without hashes (store/keys.py:
    a crash in between is finished at the next start)."""
    with app.store.transaction() as session:
        count = registry.withdraw(session, hash_ids=hash_ids, submission=submission)
    with app.store.transaction() as session:
        keys.erase_withdrawn(session)
    return count


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


def require_bank(app: App, name: str, create: bool = False) -> None:
    """A bank named by a user must exist (a typo must not silently start a new one), unless ``create`` is asked for
    or it is the default bank, which is made on first use."""
    from likeness.errors import NotFound

    with app.store.transaction() as session:
        if create:
            registry.ensure_bank(session, name)
        elif name != "default" and name not in {b.bank for b in registry.banks(session)}:
            raise NotFound(f"no bank {name!r}: create it with --create-bank, or with `likeness hashes bank {name}`")
