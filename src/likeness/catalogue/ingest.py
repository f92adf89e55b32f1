"""Idempotent ingest: the same bytes are one media row and their faces are stored once, whatever retries."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.analyze import Analysis
from likeness.errors import LikenessError
from likeness.store.models import Face, FrameHash, Media, Sighting
from likeness.text import clean, clean_json


@dataclass(frozen=True)
class StoredFace:
    id: int
    face_idx: int


@dataclass
class Ingested:
    media_id: int
    created: bool
    faces: list[StoredFace] = field(default_factory=list)


def known(session: Session, digests: list[str]) -> dict[str, int]:
    """Which of these SHA-256 digests are catalogued already (analysed or failed)."""
    if not digests:
        return {}
    rows = session.execute(select(Media.sha256, Media.id).where(Media.sha256.in_(digests)))
    return {digest: media_id for digest, media_id in rows}


@dataclass(frozen=True)
class Place:
    """Where a media was seen: a path or URL, the page showing it, and what its platform said of the post."""

    location: str
    page_url: str | None = None
    raw: bytes | None = None  # a file name's exact bytes, kept when they are not UTF-8
    platform: str | None = None
    author: str | None = None
    posted_at: datetime | None = None


def sight(session: Session, media_id: int, place: Place) -> bool:
    """Record a sighting, or move its ``last_seen`` on; True when the place is new for this media."""
    location = clean(place.location, 1 << 20)
    raw = place.raw
    stmt = insert(Sighting).values(
        media_id=media_id,
        location=location,
        location_hash=hashlib.sha256(location.encode()).digest(),
        location_raw=raw if raw is not None and raw != location.encode() else None,  # only when not lossless
        page_url=clean(place.page_url, 1 << 16) if place.page_url else None,
        platform=clean(place.platform, 200) if place.platform else None,
        author=clean(place.author, 1000) if place.author else None,
        posted_at=place.posted_at,
    )
    keep = {k: func.coalesce(getattr(stmt.excluded, k), getattr(Sighting, k)) for k in _KEPT}
    created = session.scalar(
        stmt.on_conflict_do_update(
            constraint="sightings_media_id_location_hash_key", set_={"last_seen": func.now(), **keep}
        ).returning(literal_column("xmax = 0"))  # PostgreSQL: a row inserted, not updated, has no xmax
    )
    return bool(created)


_KEPT = ("page_url", "platform", "author", "posted_at")


def ingest(
    session: Session,
    digest: str,
    place: Place,
    outcome: Analysis | LikenessError,
    canonical_id: int | None = None,
) -> Ingested:
    """Store one analysed (or failed) media with its faces and sighting, inside the caller's transaction."""
    values = {"sha256": digest, "canonical_id": canonical_id, **_media_values(outcome)}
    media_id = session.scalar(insert(Media).values(**values).on_conflict_do_nothing().returning(Media.id))
    if media_id is None:  # another worker stored these bytes first: only the sighting is new
        existing = known(session, [digest])[digest]
        sight(session, existing, place)
        return Ingested(existing, created=False)
    sight(session, media_id, place)
    result = Ingested(media_id, created=True)
    if isinstance(outcome, Analysis):
        session.add_all(FrameHash(media_id=media_id, frame=f, digest=d) for f, d in outcome.own_frame_pdqs().items())
        for idx, face in enumerate(outcome.faces):
            row = Face(
                media_id=media_id,
                idx=idx,
                frame=face.frame,
                x=face.box[0],
                y=face.box[1],
                w=face.box[2],
                h=face.box[3],
                landmarks=[list(p) for p in face.landmarks],
                det_score=face.det_score,
                quality=face.quality,
                embedding=face.embedding,
                engine=face.engine,
                model=face.model,
            )
            session.add(row)
            session.flush()
            result.faces.append(StoredFace(row.id, idx))
    return result


def _media_values(outcome: Analysis | LikenessError) -> dict[str, object]:
    """Text that came from the file (metadata, warnings, decoder messages) is cleaned and bounded here, whatever
    the analysers did: one bad string must not lose the file."""
    if isinstance(outcome, LikenessError):
        return {"status": "failed", "error_kind": outcome.kind, "error_message": clean(str(outcome), 4000)}
    return {
        "status": "analyzed",
        "format": outcome.format,
        "width": outcome.width,
        "height": outcome.height,
        "frame_count": outcome.frame_count,
        "duration_s": outcome.duration_s,
        "pdq": outcome.pdq,
        "pdq_quality": outcome.pdq_quality,
        "nsfw": outcome.nsfw,
        "provenance": clean_json(outcome.provenance),
        "skipped": clean(outcome.skipped, 1000) if outcome.skipped else None,
        "warnings": [clean(w, 1000) for w in outcome.warnings[:50]],
    }


def locations(session: Session, media_id: int) -> list[str]:
    return list(session.scalars(select(Sighting.location).where(Sighting.media_id == media_id).order_by(Sighting.id)))
