"""Protecting images by their hash (hashed here, or sent as PDQ hex by a client: only the hash is stored), banks,
lookups, withdrawal, hash lists.

A submission label (``submission``, or the file name that groups a video's features) is personal: it is sealed
with the submission's own key (registry/hashes.py) and withdrawn with its last hash.

A change that lifts a rule keeping matches away searches the catalogue again, so that media seen meanwhile are
matched: a bank enabled (or made positive, or its threshold loosened), a negative bank's veto lifted (the bank
disabled or made positive, or one of its hashes withdrawn).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import PurePath

from sqlalchemy.orm import Session

from likeness.analyze import PDQ_ALGORITHM, pdq, vpdq
from likeness.analyze.vpdq import VPDQ_ALGORITHM
from likeness.errors import InvalidInput, LikenessError, NotFound
from likeness.match import hashes as hash_match
from likeness.media import decode, sniff
from likeness.media.decode import VIDEO_FORMATS
from likeness.registry import hashes as registry
from likeness.registry import hashlists
from likeness.registry.hashes import BankInfo, HashInfo, StoredHash
from likeness.services.app import App
from likeness.services.subjects import Photo
from likeness.settings import MediaLimits
from likeness.store import keys

__all__ = ["BankInfo", "HashAdded", "HashHit", "HashIn", "HashInfo", "add_hashes", "get_hash", "lookup"]


@dataclass(frozen=True)
class HashAdded:
    file: str
    hash_id: int | None
    pdq_hex: str | None
    quality: int | None
    created: bool
    catalogue_matches: int
    error: str | None = None


@dataclass(frozen=True)
class HashIn:
    """A PDQ hash a client computed (the image never leaves them): 64 hex digits, and its quality if known."""

    pdq_hex: str
    quality: int | None = None


@dataclass(frozen=True)
class HashHit:
    hash_id: int
    bank: str
    submission: str | None  # the submission's id (random, says nothing)
    distance: int


def add_files(app: App, bank: str, files: list[Photo], *, actor: str, submission: str | None = None) -> list[HashAdded]:
    """Pictures and videos, as bytes: hashed here, never stored."""
    return [added for photo in files for added in _add_file(app, bank, photo, submission, actor)]


def add_hashes(
    app: App, bank: str, hashes: list[HashIn], *, actor: str, submission: str | None = None
) -> list[HashAdded]:
    """Hashes sent by a client, one entry each (refused ones with their reason), stored together and searched
    against the catalogue at once."""
    minimum = app.settings.hashes.pdq_min_quality
    parsed: list[tuple[int, StoredHash | str]] = [(n, _parse(h, submission, minimum)) for n, h in enumerate(hashes)]
    kept = [(n, e) for n, e in parsed if isinstance(e, StoredHash)]
    results: dict[int, HashAdded] = {
        n: HashAdded(f"#{n}", None, hashes[n].pdq_hex, hashes[n].quality, False, 0, error=e)
        for n, e in parsed
        if isinstance(e, str)
    }
    if kept:
        added, found = _store(app, bank, [e for _, e in kept], actor)
        for i, ((n, e), (hash_id, created)) in enumerate(zip(kept, added, strict=True)):
            results[n] = HashAdded(f"#{n}", hash_id, e.digest.hex(), e.quality, created, found if i == 0 else 0)
    return [results[n] for n in range(len(hashes))]


def _parse(entry: HashIn, submission: str | None, minimum: int) -> StoredHash | str:
    """The hash to store, or why not."""
    try:
        digest = _digest(entry.pdq_hex)
    except InvalidInput as exc:
        return str(exc)
    if entry.quality is not None and not 0 <= entry.quality <= 100:
        return f"quality {entry.quality} is not between 0 and 100"
    if entry.quality is not None and entry.quality < minimum:
        return f"PDQ quality {entry.quality} is under {minimum}: too little detail to match reliably; not stored"
    return StoredHash(0, digest, entry.quality, submission)


def _digest(pdq_hex: str) -> bytes:
    text = pdq_hex.strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise InvalidInput("a PDQ hash is 64 hexadecimal digits")
    return bytes.fromhex(text)


def lookup(app: App, pdq_hexes: list[str]) -> list[list[HashHit]]:
    """Each hash against the banks (HMA's lookup), nearest first: a disabled bank is not searched, a bank's own
    threshold applies, and a hit in a negative bank means no hit at all for that hash."""
    digests = [_digest(h) for h in pdq_hexes]
    indexes = app.indexes()
    with app.store.transaction() as session:
        index = indexes.hashes(session)
        return [
            [HashHit(h.hash_id, h.bank, h.submission, h.distance) for h in index.near(session, [(0, digest)])]
            for digest in digests
        ]


def get_hash(app: App, hash_id: int) -> HashInfo:
    with app.store.transaction() as session:
        return registry.get_hash(session, hash_id)


def _add_file(app: App, bank: str, photo: Photo, submission: str | None, actor: str) -> list[HashAdded]:
    """One PDQ for a picture; vPDQ features (a PDQ per second) for a video, a PDQ per sampled frame for an
    animation, grouped as one submission."""
    try:
        group = f"video:{PurePath(photo.name).name}"  # the name only: where it lay on a disk labels nothing
        entries = _hash_file(photo.data, app.settings.media, submission, group)
    except LikenessError as exc:
        return [HashAdded(photo.name, None, None, None, False, 0, error=str(exc))]

    def label(e: StoredHash) -> str:
        return photo.name if e.frame is None else f"{photo.name}#frame{e.frame}"

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
    added, found = _store(app, bank, kept, actor)
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


def _store(app: App, bank: str, entries: list[StoredHash], actor: str) -> tuple[list[tuple[int, bool]], int]:
    """Store hashes in one transaction and search the catalogue for the new ones; (id, created) and matches.
    ``entries`` carry their submission's label; they are stored with the submission's id."""
    with app.store.transaction() as session:
        labels = {e.submission for e in entries if e.submission is not None}
        ids = {label: registry.submission_for(session, label, create=True, actor=actor) for label in labels}
        stored = [replace(e, submission=ids[e.submission]) if e.submission is not None else e for e in entries]
        added = [registry.add_hash(session, bank, entry, actor=actor) for entry in stored]
        new = [hash_id for hash_id, created in added if created]
        found = hash_match.search_catalogue(session, new, app.settings.hashes, actor=actor) if new else 0
    return added, found


def import_list(
    app: App, bank: str, text: str, fmt: str, *, actor: str, name: str = "list", submission: str | None = None
) -> tuple[int, int, int]:
    """Import a hash list, or a vPDQ file (one protected video, ``name`` labels it); returns (new, already present,
    catalogue matches)."""
    if fmt == "vpdq":
        features = vpdq.loads(text)
        submission = submission or f"vpdq:{name}"
        entries = [StoredHash(0, f.digest, f.quality, submission, VPDQ_ALGORITHM, f.frame, f.time_s) for f in features]
    else:
        entries = [StoredHash(0, e.digest, e.quality, submission) for e in hashlists.parse(text, fmt)]
    first: dict[bytes, StoredHash] = {}
    for entry in entries:  # a video repeats a still shot's hash: it is one protected hash, at its first frame
        first.setdefault(entry.digest, entry)
    added, found = _store(app, bank, list(first.values()), actor)
    new = sum(created for _, created in added)
    return new, len(added) - new, found


def export_list(app: App, bank: str, fmt: str, submission: str | None = None) -> str:
    if fmt == "vpdq" and submission is None:
        raise InvalidInput("a vPDQ file holds one video: name its submission")
    with app.store.transaction() as session:
        rows = registry.hashes_in(session, bank, submission)
    if fmt == "vpdq":
        return vpdq.dumps([vpdq.Feature(h.frame or 0, h.quality or 0, h.digest, h.time_s or 0.0) for h in rows])
    return hashlists.render([(h.digest, h.quality, str(h.id)) for h in rows], fmt)


def withdraw(app: App, *, actor: str, hash_ids: list[int] | None = None, submission: str | None = None) -> int:
    """Hashes go in one transaction (a negative bank's hash going lifts its veto: the catalogue is searched again
    in the same transaction); then the key and label of each submission left without hashes (store/keys.py: a
    crash in between is finished at the next start)."""
    with app.store.transaction() as session:
        gone = registry.withdraw(session, actor=actor, hash_ids=hash_ids, submission=submission)
        rules = hash_match.bank_rules(session, app.settings.hashes)
        if any(rules[bank].negative and rules[bank].enabled for _, bank in gone if bank in rules):
            _search_positive_banks(session, app, actor)
    with app.store.transaction() as session:
        keys.erase_withdrawn(session)
    return len(gone)


def configure_bank(
    app: App,
    name: str,
    *,
    actor: str,
    enabled: bool | None = None,
    negative: bool | None = None,
    max_distance: int | None = None,
) -> BankInfo:
    with app.store.transaction() as session:
        before = next((b for b in registry.banks(session, counted=False) if b.bank == name), None)
        after = registry.configure_bank(
            session,
            name,
            app.settings.hashes.pdq_max_distance,
            actor=actor,
            enabled=enabled,
            negative=negative,
            max_distance=max_distance,
        )
        _search_again(session, app, before, after, actor)
    return after


def _search_again(session: Session, app: App, before: BankInfo | None, after: BankInfo, actor: str) -> int:
    """A bank change that can only add matches searches the catalogue again: a positive bank that now admits
    more (enabled, made positive, threshold loosened), or a negative bank whose veto went (disabled, made
    positive). Matches already there are kept."""
    if before is None:
        return 0
    global_max = app.settings.hashes.pdq_max_distance

    def admits(b: BankInfo) -> int:  # -1: admits nothing as a positive bank
        return (
            -1 if not b.enabled or b.negative else min(b.max_distance if b.max_distance is not None else 99, global_max)
        )

    vetoed = before.enabled and before.negative and not (after.enabled and after.negative)
    if vetoed:
        return _search_positive_banks(session, app, actor)
    if admits(after) > admits(before):
        return hash_match.search_catalogue(
            session, registry.hash_ids_in(session, [after.bank]), app.settings.hashes, actor=actor
        )
    return 0


def _search_positive_banks(session: Session, app: App, actor: str) -> int:
    positive = [b.bank for b in registry.banks(session, counted=False) if b.enabled and not b.negative]
    ids = registry.hash_ids_in(session, positive)
    return hash_match.search_catalogue(session, ids, app.settings.hashes, actor=actor) if ids else 0


def list_banks(app: App) -> list[BankInfo]:
    with app.store.transaction() as session:
        return registry.banks(session)


def require_bank(app: App, name: str, create: bool = False, *, actor: str) -> None:
    """A bank named by a user must exist (a typo must not silently start a new one), unless ``create`` is asked for
    or it is the default bank, which is made on first use."""
    with app.store.transaction() as session:
        if create:
            registry.ensure_bank(session, name, actor=actor)
        elif name != "default" and name not in {b.bank for b in registry.banks(session, counted=False)}:
            raise NotFound(f"no bank {name!r}: create it first")
