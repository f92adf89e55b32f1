"""The pipeline's steps as plain functions over ids and narrow stores: read, skip known bytes, analyse, commit,
match. The CLI's scan runs them in-process around its worker pool (services/scan.py); the API and a task queue
call the same functions. Each step that writes is one transaction and idempotent: the same bytes are one media,
the same place one sighting, the same face/subject or hash/media pair one match, whatever retries happen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.catalogue import crawls
from likeness.catalogue import ingest as catalogue
from likeness.catalogue.ingest import Place
from likeness.errors import LikenessError, UnsafeUrl
from likeness.fetch import Fetcher
from likeness.settings import Settings
from likeness.sources import MediaRef, read_file
from likeness.store import Store
from likeness.text import clean

if TYPE_CHECKING:
    from likeness.catalogue.near_duplicates import NearDuplicates
    from likeness.match.indexes import Indexes


@dataclass(frozen=True)
class Committed:
    media_id: int
    created: bool  # False: another worker stored these bytes first (only the sighting is new)
    canonical_id: int | None
    face_matches: int = 0
    hash_matches: int = 0


def read(ref: MediaRef, settings: Settings, fetcher: Fetcher | None, location: str | None = None) -> bytes:
    """A local file the user named (or its folder holds), or a URL through the fetch layer. Nothing else is read:
    a crawled item never reaches the file system."""
    if ref.raw_path is not None:
        return read_file(ref, settings.media.max_bytes)
    url = location or ref.location
    if not url.startswith(("http://", "https://")):
        raise UnsafeUrl(f"{clean(url, 200)}: only http and https URLs are fetched")
    if fetcher is None:
        raise LikenessError(f"{url}: no fetcher configured for URLs")
    return fetcher.get(url)


def place_of(ref: MediaRef) -> Place:
    """Where a ref was seen, with what its platform said: the platform (the source's first part), the poster's
    handle and when it was posted."""
    meta = ref.meta or {}
    author = meta.get("author") or meta.get("username")
    return Place(
        ref.location,
        ref.page_url,
        ref.raw_path,
        platform=ref.source.split(":", 1)[0] if ref.source else None,
        author=str(author) if author else None,
        posted_at=_time(meta.get("created")),
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def sight_known(store: Store, ref: MediaRef, digest: str, indexes: Indexes, *, actor: str) -> int | None:
    """Bytes catalogued already: their new sighting (and crawl item) recorded, and, when the place is new, the
    media matched again from what is stored (a subject whose allowlisted domains held every earlier place must now
    be matched). Returns the media id; None when the bytes are new."""
    with store.transaction() as session:
        media_id = catalogue.known(session, [digest]).get(digest)
        if media_id is not None and sight(session, media_id, ref):
            match_media(session, media_id, indexes, actor=actor)
        return media_id


def sight(session: Session, media_id: int, ref: MediaRef) -> bool:
    """Record a sighting of a media (and its crawl item); True when the place is new."""
    new = catalogue.sight(session, media_id, place_of(ref))
    record_item(session, media_id, ref)
    return new


def record_item(session: Session, media_id: int, ref: MediaRef) -> None:
    if ref.source and ref.key:
        crawls.record(
            session, ref.source, ref.key, "done", ref.location, media_id=media_id, page_url=ref.page_url, meta=ref.meta
        )


def commit_analysis(
    store: Store,
    ref: MediaRef,
    digest: str,
    outcome: Analysis | LikenessError,
    indexes: Indexes,
    *,
    actor: str,
    extra: list[MediaRef] | None = None,
    groups: NearDuplicates | None = None,
) -> Committed:
    """One transaction: the media (or its failure), faces, sightings (``extra``: other places with the same
    bytes), crawl items and, for a new media, its matches. Returns what was stored; the caller tells ``groups``
    of a new group after the commit (``NearDuplicates.started``)."""
    with store.transaction() as session:
        canonical = groups.canonical_for(session, outcome) if groups and isinstance(outcome, Analysis) else None
        stored = catalogue.ingest(session, digest, place_of(ref), outcome, canonical)
        record_item(session, stored.media_id, ref)
        for other in extra or []:
            sight(session, stored.media_id, other)
        faces = hashes = 0
        if stored.created and isinstance(outcome, Analysis):
            faces, hashes = indexes.match(session, stored, outcome, actor=actor)
    return Committed(stored.media_id, stored.created, canonical, faces, hashes)


def match_media(session: Session, media_id: int, indexes: Indexes, *, actor: str) -> tuple[int, int]:
    """A catalogued media matched again from what is stored (its faces' embeddings, its frames' PDQs; the
    orientation variants of frame 0 are not stored, so a rotated copy is matched at ingest only). New matches
    (faces, hashes); those already there are kept."""
    from likeness.match import faces as face_match
    from likeness.match import hashes as hash_match

    faces = indexes.match_faces(session, media_id, face_match.stored_faces(session, media_id), actor=actor)
    hashes = hash_match.match_stored(session, indexes.hashes(session), media_id, indexes.settings.hashes, actor=actor)
    return faces, hashes
