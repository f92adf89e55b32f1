"""Request and response bodies of the API: the JSON shape of the services' records, kept in this shell."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

PdqHex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$", description="a PDQ hash, 64 hex digits")]


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Health(Out):
    status: str


class Face(Out):
    box: tuple[int, int, int, int] = Field(description="x, y, width, height in the upload's pixels")
    det_score: float
    quality: float
    frame: int


class FaceMatch(Out):
    subject_id: int
    similarity: float
    tier: str
    face: int = Field(description="index into faces")


class HashMatch(Out):
    hash_id: int
    bank: str
    submission: str | None
    distance: int
    frame: int | None


class Checked(Out):
    sha256: str
    format: str
    width: int
    height: int
    frame_count: int
    duration_s: float | None
    pdq: str | None
    pdq_quality: int | None
    nsfw: float | None
    provenance: dict[str, str]
    skipped: str | None
    warnings: list[str]
    faces: list[Face]
    face_matches: list[FaceMatch]
    hash_matches: list[HashMatch] = Field(description="only for callers who may see the banks")
    sampled_frames: list[int]


class FrameRisk(Out):
    frame: int
    faces: int
    face_matches: int
    hash_matches: int


class Risk(Out):
    level: str = Field(description="none, low, medium or high")
    max_nsfw: float | None
    faces: int
    face_matches: int
    hash_matches: int
    frames: list[FrameRisk]


class Batch(Out):
    check: Checked
    risk: Risk


class LookupIn(BaseModel):
    hashes: list[PdqHex] = Field(min_length=1, max_length=1000)


class LookupHit(Out):
    hash_id: int
    bank: str
    submission: str | None
    distance: int


class LookupResult(Out):
    pdq: str
    matches: list[LookupHit]


class Lookup(Out):
    results: list[LookupResult]


class HashIn(BaseModel):
    pdq: PdqHex
    quality: int | None = Field(default=None, ge=0, le=100)


class ProtectIn(BaseModel):
    bank: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    hashes: list[HashIn] = Field(min_length=1, max_length=1000)
    submission: str | None = Field(default=None, max_length=128, description="a label kept sealed")


class HashAdded(Out):
    hash_id: int | None
    pdq_hex: str | None
    quality: int | None
    created: bool
    catalogue_matches: int
    error: str | None = None


class Protected(Out):
    added: list[HashAdded]


class HashInfo(Out):
    hash_id: int
    bank: str
    algorithm: str
    pdq_hex: str
    quality: int | None
    submission: str | None = Field(description="the submission's label")
    frame: int | None
    created_at: datetime


class Withdrawn(Out):
    withdrawn: dict[str, int]


class Subject(Out):
    id: int
    name: str
    references: int
    outliers: int
    matches: int
    allowed_domains: list[str]
    model: str


class Enrolled(Out):
    subject_id: int
    references: int
    catalogue_matches: int
    added_to_existing: bool = False


class Sighting(Out):
    url: str
    page_url: str | None
    platform: str | None
    author: str | None
    posted_at: datetime | None
    first_seen: datetime
    last_seen: datetime


class Match(Out):
    id: int
    kind: str = Field(description="face or hash")
    target: str = Field(description="the subject's name or the bank's")
    subject_id: int | None
    location: str = Field(description="one place the media was seen; every place is in sightings")
    score: float
    tier: str
    status: str
    media_id: int
    sha256: str
    face_box: tuple[int, int, int, int] | None
    frame: int
    nsfw: float | None
    provenance: dict[str, str]
    created_at: datetime
    detail: dict[str, Any] | None = None
    hash_id: int | None = None
    bank: str | None = None
    submission: str | None = None
    note: str | None = None
    updated_at: datetime | None = None
    reviewer: str | None = None
    sightings: list[Sighting] = []


class Matches(Out):
    items: list[Match]
    limit: int
    offset: int


class ReviewIn(BaseModel):
    status: str = Field(
        description="new -> confirmed | rejected | false_positive; on_hold -> released (or a decision); "
        "confirmed -> actioned -> removed | still_up; any other move is refused (409)"
    )
    note: str | None = Field(default=None, max_length=10_000)


class Media(Out):
    media_id: int
    sha256: str
    status: str
    format: str | None
    width: int | None
    height: int | None
    frame_count: int | None
    nsfw: float | None
    provenance: dict[str, str]
    error_kind: str | None
    created_at: datetime
    sightings: list[Sighting]
    matches: list[Match]


class ScanIn(BaseModel):
    urls: list[Annotated[str, Field(max_length=8192, pattern=r"^https?://")]] = Field(min_length=1, max_length=100)


class FileError(Out):
    location: str
    kind: str
    message: str


class ScanSummary(Out):
    files: int
    analyzed: int
    already_known: int
    faces: int
    face_matches: int
    hash_matches: int
    errors: list[FileError]
    elapsed_s: float


class Crawl(Out):
    source: str
    cursor: str | None
    backfilled: bool
    pages: int
    items: int
    failed: int
    last_run_at: datetime | None
    last_error: str | None
    running: bool = False


class Crawls(Out):
    crawls: list[Crawl]


class CrawlIn(BaseModel):
    source: str = Field(pattern=r"^(civitai|reddit|deviantart)$")
    query: str | None = Field(default=None, max_length=200, description="reddit: the subreddit; deviantart: a query")
    max_pages: int = Field(default=10, ge=1, le=1000)


class CrawlStarted(Out):
    source: str
    started: bool


class Held(Out):
    accepted: bool = True


class Stats(Out):
    counts: dict[str, int]


class Token(Out):
    id: int
    label: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenIn(BaseModel):
    label: str = Field(default="", max_length=64)
    scopes: list[str] | None = Field(default=None, max_length=32, description="default: all the account may hold")
    days: float = Field(default=90.0, gt=0, le=3650)


class NewToken(Out):
    token: str = Field(description="shown once: only its digest is kept")
    info: Token


class Tokens(Out):
    tokens: list[Token]


class Me(Out):
    account_id: int
    token_id: int | None
    role: str
    scopes: list[str]
    subject_id: int | None
