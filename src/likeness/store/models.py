"""The system of record. Indexes elsewhere are accelerators rebuilt from these tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIT, CIDR, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Subject(Base):
    """A consenting person. Everything personal (name, allowed domains, the centroid: a biometric template) is
    sealed with the subject's own data key, ``key_id`` in the keyring (store/crypto.py), so that destroying the key
    at withdrawal leaves every copy of these rows unreadable. ``withdrawn_at`` marks a withdrawal whose key and rows
    are still to be destroyed (store/keys.py finishes it, after a crash too); such a subject reads as gone."""

    __tablename__ = "subjects"
    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: sealed before 0008 (legacy)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    domains_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # JSON list, sealed
    centroid_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32, sealed
    engine: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()
    # The consent text the subject agreed to (0019): None for subjects enrolled by an operator on other grounds.
    consent_sha256: Mapped[str | None] = mapped_column(ForeignKey("consent_texts.sha256"), nullable=True)
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enrolled_by: Mapped[str] = mapped_column(String(16), server_default="operator")  # operator | self
    # Legacy, in clear: emptied when the subject is re-sealed at start (store/keys.py); to drop in a later migration.
    allowed_domains: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    centroid: Mapped[Any] = mapped_column(Vector(), nullable=True)


class SubjectReference(Base):
    """One reference face of a subject: its embedding and, if the operator keeps them, a face crop, both sealed
    with the subject's key. Matching decrypts embeddings in memory (registry.subjects.probe_vectors)."""

    __tablename__ = "subject_references"
    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), index=True)
    embedding_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # float32, sealed
    quality: Mapped[float] = mapped_column(Float)
    is_outlier: Mapped[bool] = mapped_column(Boolean, default=False)
    crop_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = _now()
    # Legacy, in clear: emptied when the subject is re-sealed at start; to drop in a later migration.
    embedding: Mapped[Any] = mapped_column(Vector(), nullable=True)


class Media(Base):
    """One distinct file (by SHA-256), analysed once; ``status`` is 'analyzed' or 'failed'.

    ``canonical_id`` points a near-duplicate (the same picture resized or re-encoded) at the first media of its
    group. Near-duplicates are still analysed in full: a face swap changes too few PDQ bits to tell it apart.
    """

    __tablename__ = "media"
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    canonical_id: Mapped[int | None] = mapped_column(
        ForeignKey("media.id", ondelete="SET NULL"), nullable=True, index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    format: Mapped[str | None] = mapped_column(String(16), nullable=True)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frame_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    nsfw: Mapped[float | None] = mapped_column(Float, nullable=True)
    provenance: Mapped[dict[str, str]] = mapped_column(JSONB, server_default="{}")
    skipped: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    created_at: Mapped[datetime] = _now()


class Sighting(Base):
    """Where a media was seen: the same bytes can live at many paths and URLs."""

    __tablename__ = "sightings"
    __table_args__ = (UniqueConstraint("media_id", "location_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    location: Mapped[str] = mapped_column(Text)  # readable: bytes of a file name that are not UTF-8 shown as \xNN
    location_raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)  # then: the name's exact bytes
    location_hash: Mapped[bytes] = mapped_column(LargeBinary)  # SHA-256 of location: unique per media, any length
    page_url: Mapped[str | None] = mapped_column(Text, nullable=True)  # crawls: the post or page showing it
    # crawls: what the platform said of the post (0009): the platform, the poster's handle, when it was posted
    platform: Mapped[str | None] = mapped_column(Text, nullable=True)
    author: Mapped[str | None] = mapped_column(Text, nullable=True)
    posted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    first_seen: Mapped[datetime] = _now()
    last_seen: Mapped[datetime] = _now()


class CrawlState(Base):
    """One crawl source's checkpoint. ``cursor`` is where the first (backfill) crawl resumes; once it reaches the
    end, ``backfilled`` is set and later runs only walk from the newest item down to what they have seen."""

    __tablename__ = "crawl_state"
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text, nullable=True)
    backfilled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    pages: Mapped[int] = mapped_column(Integer, server_default="0")
    items: Mapped[int] = mapped_column(Integer, server_default="0")
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class CrawlItem(Base):
    """A platform item a crawl has dealt with, written in the same transaction as its media: a crawl killed at any
    point neither loses nor repeats an item. ``failed`` items (transient errors) are retried on the next run."""

    __tablename__ = "crawl_items"
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # done | failed | skipped
    media_id: Mapped[int | None] = mapped_column(ForeignKey("media.id", ondelete="SET NULL"), nullable=True)
    url: Mapped[str] = mapped_column(Text)
    page_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # what the platform said: posted time, author, NSFW level, size, generation prompt...
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    seen_at: Mapped[datetime] = _now()


class Face(Base):
    __tablename__ = "faces"
    __table_args__ = (UniqueConstraint("media_id", "idx"), Index("ix_faces_engine_model", "engine", "model"))
    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    idx: Mapped[int] = mapped_column(Integer)
    frame: Mapped[int] = mapped_column(Integer, server_default="0")
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    landmarks: Mapped[list[list[int]]] = mapped_column(JSONB)
    det_score: Mapped[float] = mapped_column(Float)
    quality: Mapped[float] = mapped_column(Float)
    embedding: Mapped[Any] = mapped_column(Vector())
    engine: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))


class FrameHash(Base):
    """The PDQ of a later sampled frame of a video or animation (frame 0's is ``media.pdq``), so a hash protected
    later is searched in every frame the catalogue has seen."""

    __tablename__ = "frame_hashes"
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), primary_key=True)
    frame: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary)


class Bank(Base):
    """A named set of protected hashes. A negative bank holds known false positives: media matching it raise no
    hash match. ``max_distance`` (None: the global PDQ threshold) can only tighten the global one."""

    __tablename__ = "banks"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    negative: Mapped[bool] = mapped_column(Boolean, server_default="false")
    max_distance: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = _now()


class Submission(Base):
    """The hashes one person submitted together (an NCII submission), with its own data key. ``id`` is random and
    says nothing; the label the operator gave is sealed with the key, and found again through ``label_index``, a
    short keyed hash of the label (crypto.LABEL_INDEX_BITS: a bucket, decrypted and compared to find the one)."""

    __tablename__ = "submissions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: from before 0008, until start
    label_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    label_index: Mapped[int | None] = mapped_column(SmallInteger, nullable=True, index=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()
    # Legacy, in clear: the label of a submission made before 0008, sealed and emptied at start (store/keys.py).
    legacy_label: Mapped[str | None] = mapped_column(Text, nullable=True)


class ProtectedHash(Base):
    """A perceptual hash submitted to protect an image that we never see.

    ``submission`` (a ``submissions.id``) groups the hashes one person submitted together, so they can be withdrawn
    together. ``quality`` is None for hashes imported from a list that did not carry it.
    """

    __tablename__ = "protected_hashes"
    __table_args__ = (UniqueConstraint("bank", "algorithm", "digest"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    bank: Mapped[str] = mapped_column(ForeignKey("banks.name", onupdate="CASCADE"), index=True)
    algorithm: Mapped[str] = mapped_column(String(32))
    digest: Mapped[bytes] = mapped_column(LargeBinary)
    quality: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submission: Mapped[str | None] = mapped_column(String(128), ForeignKey("submissions.id"), nullable=True, index=True)
    frame: Mapped[int | None] = mapped_column(Integer, nullable=True)  # vPDQ: the protected video's frame
    time_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = _now()


class Match(Base):
    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("subject_id", "face_id"),
        UniqueConstraint("hash_id", "media_id"),
        Index("ix_matches_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # 'face' | 'hash'
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True)
    face_id: Mapped[int | None] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), nullable=True)
    hash_id: Mapped[int | None] = mapped_column(ForeignKey("protected_hashes.id", ondelete="CASCADE"), nullable=True)
    media_id: Mapped[int] = mapped_column(ForeignKey("media.id", ondelete="CASCADE"), index=True)
    score: Mapped[float] = mapped_column(Float)
    tier: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="new")
    frame: Mapped[int | None] = mapped_column(Integer, nullable=True)  # hash matches: the media's frame that hit
    # hash matches on a protected video: vPDQ's video-level shares, {"submission", "query_percent", ...}
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB, nullable=True)
    # a reviewer's note (0009), sealed with the key of the match's owner (subject or submission) or its own
    note_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    note_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    takedown_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # 0019
    reviewer: Mapped[str | None] = mapped_column(String(128), nullable=True)  # who made the last decision (0016)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class AuditEvent(Base):
    """Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE) and chained by a keyed MAC over every field of
    the row and the previous row's MAC (store/audit.py). ``seq`` is gapless; ``personal`` is the personal part of
    the record, sealed with the owner's key ``key_id``. ``hash`` is the row's MAC, ``prev_hash`` the previous one."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "id"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    personal: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    chain_version: Mapped[int] = mapped_column(SmallInteger)  # 0: plain SHA-256 from before 0008, until adopted
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


# -- Accounts and API tokens (issue 10; accounts/) ---------------------------------------------------------------


class ConsentText(Base):
    """A consent text exactly as it was shown, kept by its SHA-256: a subject's record names the one they agreed
    to, so a later edit of the wording cannot change what someone consented to."""

    __tablename__ = "consent_texts"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Account(Base):
    """Someone who uses the API: an ``admin``, a ``reviewer`` or a ``subject`` (bound to one enrolled subject, whose
    data alone it sees; without one it may only enroll itself, once). ``username`` is a login handle chosen by the
    operator, not a person's name or email (those are personal data and would be sealed); ``password_hash`` is
    argon2id (None: a token-only account)."""

    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    # a withdrawn subject's rows are deleted: its account then sees nothing (and is disabled by the withdrawal)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id", ondelete="SET NULL"), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()


class ApiToken(Base):
    """A bearer token. Only the SHA-256 of the token is stored (``digest``): the token itself is shown once, when
    it is created (accounts/tokens.py says why SHA-256 and not argon2 here)."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    label: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()


# ---------------------------------------------------------------------------------------------------------------
# Abuse controls (abuse/, migration 0011). Shared by every API process: no state lives in a process.
# ---------------------------------------------------------------------------------------------------------------


class AbuseTrust(Base):
    """A trust score (0-100) per ``account:<id>`` or ``ip:<address>``. ``score`` is as of ``updated_at``; the
    recovery since then is computed when read (abuse/trust.py), so nothing has to tick."""

    __tablename__ = "abuse_trust"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AbuseBucket(Base):
    """A token bucket per ``token:<id>`` (or ``account:<id>``) and ``ip:<address>``, refilled lazily in the one
    UPDATE that spends it (abuse/buckets.py); ``ok`` says whether that last spend was admitted."""

    __tablename__ = "abuse_buckets"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AbuseMeasure(Base):
    """What stands against a caller, in one id space so that ``likeness abuse lift ID`` needs nothing else:
    ``block`` (``network``, an IP or CIDR), ``ban`` and ``shadow_ban`` (``account_id``), and the flags
    ``coordinated`` (``subject`` 'sha256:<hex>') and ``enumeration`` (``subject`` the caller's key, throttled until
    ``expires_at``). Active: not lifted and not expired."""

    __tablename__ = "abuse_measures"
    __table_args__ = (
        Index("ix_abuse_measures_kind_subject", "kind", "subject"),
        Index("ix_abuse_measures_account", "account_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    network: Mapped[str | None] = mapped_column(CIDR, nullable=True)
    account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ip: Mapped[str | None] = mapped_column(Text, nullable=True)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lifted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    lifted_by: Mapped[str | None] = mapped_column(String(128), nullable=True)


class AbuseUpload(Base):
    """A picture's hashes as submitted, for coordinated-attack detection only; rows older than the window are
    deleted as new ones arrive. ``who`` is the caller's first key (its account, else its IP)."""

    __tablename__ = "abuse_uploads"
    __table_args__ = (Index("ix_abuse_uploads_sha256", "sha256"), Index("ix_abuse_uploads_at", "at"))
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    who: Mapped[str] = mapped_column(Text)
    sha256: Mapped[bytes] = mapped_column(LargeBinary)
    pdq: Mapped[str | None] = mapped_column(BIT(256), nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AbuseProbe(Base):
    """One distinct face or hash a caller probed: only a keyed MAC of it (abuse/detect.py), never the key itself,
    so this table cannot tell anyone which faces or hashes were asked about."""

    __tablename__ = "abuse_probes"
    __table_args__ = (Index("ix_abuse_probes_who_at", "who", "at"),)
    who: Mapped[str] = mapped_column(Text, primary_key=True)
    mac: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AbuseHeld(Base):
    """A shadow-banned caller's submission, accepted and never processed: only what the API said of it (hashes,
    sizes, counts), never the picture."""

    __tablename__ = "abuse_held"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ip: Mapped[str] = mapped_column(Text)
    what: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AbuseLogEntry(Base):
    """Every abuse decision: who (``actor`` decided it; the caller's account, token and IP), what (``decision``),
    why (``reason``, ``detail``), when (``at``). Append-only: a trigger refuses UPDATE, DELETE and TRUNCATE."""

    __tablename__ = "abuse_log"
    __table_args__ = (Index("ix_abuse_log_at", "at"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    ip: Mapped[str | None] = mapped_column(Text, nullable=True)
    measure_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


# --- schedule (migration 0015): crawl cadences and subject tiers ------------------------------------------------


class CrawlSchedule(Base):
    """A crawl source re-run on a cadence (likeness/schedule). ``name`` is the operator's handle; ``kind`` and
    ``query`` build the source (as ``POST /v1/crawls`` does). ``last_deferred_at`` is when the scheduler last queued
    its crawl: it is due again ``every_s`` after that, so a crawl is queued once per cadence however many schedulers
    tick."""

    __tablename__ = "crawl_schedules"
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    max_pages: Mapped[int] = mapped_column(Integer)
    every_s: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default="true")
    last_deferred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()


class SubjectTier(Base):
    """A subject's tier (free / protected / premium: settings.schedule.tiers), which sets how often the catalogue
    is searched again for its face and which follow-ups it gets. No row: the default tier. ``last_checked_at`` is
    when its last re-search was queued."""

    __tablename__ = "subject_tiers"
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))
    last_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = _now()


# -- Alerts and honeypots (issue 11; alerts/) -------------------------------------------------------------------


class AlertRule(Base):
    """Where new matches at or above ``min_tier`` are told: a webhook (``channel`` 'webhook': URL and HMAC secret)
    or email digests (``channel`` 'email': addresses). The target is sealed with the rule's own data key: a webhook
    secret or someone's address is never in the clear in the database. ``digest_s``: at most one email per that
    many seconds, carrying everything pending. ``locations``: whether messages carry where-found URLs."""

    __tablename__ = "alert_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    min_tier: Mapped[str] = mapped_column(String(8))
    # a subject-facing rule: only that subject's matches (honeypot alerts never), fewer details (alerts/deliver.py)
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True)
    key_id: Mapped[str] = mapped_column(String(32))
    target_enc: Mapped[bytes] = mapped_column(LargeBinary)
    digest_s: Mapped[int] = mapped_column(Integer, server_default="0")
    locations: Mapped[bool] = mapped_column(Boolean, server_default="false")
    last_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()


class AlertDelivery(Base):
    """One thing to tell one rule: a new match, or a honeypot plant the pipeline missed. Unique per (rule, match)
    and (rule, plant), so however often matches are re-found or checks run, each is told once. ``status``:
    'pending' until sent ('sent') or out of attempts ('failed', with ``last_error``)."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        UniqueConstraint("rule_id", "match_id"),
        UniqueConstraint("rule_id", "plant_id"),
        Index("ix_alert_deliveries_pending", "rule_id", "status"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), nullable=True)
    plant_id: Mapped[int | None] = mapped_column(ForeignKey("honeypot_plants.id", ondelete="CASCADE"), nullable=True)
    event: Mapped[str] = mapped_column(String(24))  # 'match' | 'honeypot_missed'
    status: Mapped[str] = mapped_column(String(8), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = _now()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Honeypot(Base):
    """A synthetic subject enrolled from a picture that ships in a package (``picture``), whose copies are planted
    where the pipeline should find them. Its matches are canaries: never alerted as matches."""

    __tablename__ = "honeypots"
    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), unique=True)
    picture: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = _now()


class HoneypotPlant(Base):
    """One planted copy (fresh bytes each time: ``sha256``) at ``location``; missed when ``due_at`` has passed and
    no match of its honeypot's subject on media with those bytes exists."""

    __tablename__ = "honeypot_plants"
    id: Mapped[int] = mapped_column(primary_key=True)
    honeypot_id: Mapped[int] = mapped_column(ForeignKey("honeypots.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    location: Mapped[str] = mapped_column(Text)
    planted_at: Mapped[datetime] = _now()
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- POLITE (issue 11): politeness shared by every crawling process -------------------------------------------


class PoliteHost(Base):
    """One host's politeness, shared by every crawling process (fetch/shared.py): a token bucket (``tokens`` as
    counted at ``counted_at``, refilled lazily by the upsert that spends it; ``ok``: whether that spend was
    admitted), a pause a server asked for (``not_before``) and a circuit breaker (``failures`` in a row; left
    alone until ``open_until``). State, not a record: a row may be deleted at any time and starts afresh."""

    __tablename__ = "polite_hosts"
    host: Mapped[str] = mapped_column(Text, primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    ok: Mapped[bool] = mapped_column(Boolean)
    counted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    failures: Mapped[int] = mapped_column(Integer)
    open_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


# --- task queue (migration 0012): the last error of each failing job ---------------------------------------------


class JobError(Base):
    """Why a queue job (procrastinate_jobs, created by procrastinate's own schema) last failed: procrastinate keeps
    a job's status and events but not its exception, and a job that ends ``failed`` must say why
    (``likeness jobs list``). One row per job, overwritten on each failed attempt."""

    __tablename__ = "job_errors"
    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    task_name: Mapped[str] = mapped_column(String(128))
    attempt: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- NOTICES (issue 12, migration 0018): takedown notices, tracked until the material is gone -------------------


class TakedownNotice(Base):
    """One notice about one match's material at one ``location`` (a sighting's URL): drafted, then sent through
    ``channel``, owed an answer by ``deadline_at`` (cases/notices.py computes it per law), re-checked until
    ``status`` is 'removed' or escalated as 'still_up'. ``sha256``/``pdq``: the picture as matched, to tell a
    changed picture from the same one still served. The platform's ``response`` may name people: it is sealed
    with the key of whom the match concerns (``response_key_id``), so it goes with their withdrawal."""

    __tablename__ = "takedown_notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), index=True)
    location: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    pdq: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16), server_default="drafted")
    channel: Mapped[str | None] = mapped_column(Text, nullable=True)
    drafted_at: Mapped[datetime] = _now()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finding: Mapped[str | None] = mapped_column(Text, nullable=True)  # what the last check saw, for people
    response_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    response_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)


# --- EVIDENCE (issue 12, migration 0017): frozen evidence, one case per match -----------------------------------


class EvidenceCase(Base):
    """The case opened on one match: ``key_id`` (in the keyring) seals every evidence blob: the key of whom the
    match concerns (subject or submission; a key of its own otherwise), so that their withdrawal leaves the frozen
    pages, pictures and screenshots unreadable wherever the blobs were copied."""

    __tablename__ = "evidence_cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"), unique=True)
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: shredded
    created_at: Mapped[datetime] = _now()


class EvidenceCapture(Base):
    """One capture of a case's location: the manifest's blob address (in the evidence store), its SHA-256 and
    signature, so a bundle can be checked against what was recorded (and audited) at capture time."""

    __tablename__ = "evidence_captures"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("evidence_cases.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    manifest_blob: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    files: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    captured_at: Mapped[datetime] = _now()


# --- REVIEW (issue 12, migration 0016): labelled pairs for calibration, NCII case reports -----------------------


class CalibrationPair(Base):
    """A reviewer's verdict on one match, kept without pictures so thresholds can be calibrated on real decisions:
    the score (a face embedding's similarity, or a hash distance), the model or algorithm that gave it, the tier it
    was put in, and whom it concerned. ``label``: 'false_positive' (a negative pair) or 'confirmed' (a positive one).
    The subject's rows go with the subject (withdrawal deletes them, by the foreign key)."""

    __tablename__ = "calibration_pairs"
    id: Mapped[int] = mapped_column(primary_key=True)
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(8))  # 'face' | 'hash'
    label: Mapped[str] = mapped_column(String(16), index=True)
    score: Mapped[float] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(128))
    tier: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"), nullable=True)
    hash_id: Mapped[int | None] = mapped_column(ForeignKey("protected_hashes.id", ondelete="CASCADE"), nullable=True)
    reviewer: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _now()


class NciiCase(Base):
    """A victim's report of intimate images shared without consent. ``number`` (random, human-typable) and a PIN
    (kept as an argon2id hash only) let the victim check its status or withdraw it. Everything personal (the
    description, contact data, URLs, linked hashes and submission) is sealed in ``details_enc`` with the case's own
    data key ``key_id``; withdrawal empties it and shreds the key (``key_id`` None), so every copy stays unreadable.
    ``kind`` and ``platforms`` are kept in clear for triage: they say nothing about who reported."""

    __tablename__ = "ncii_cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    pin_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    pin_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    platforms: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    details_enc: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    status: Mapped[str] = mapped_column(String(16), server_default="open")  # open | withdrawn
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
