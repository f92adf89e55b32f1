"""The one settings tree. Read once where the app is wired (``get_settings``), passed down from there."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MediaLimits(BaseModel):
    max_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 60_000_000
    max_frames: int = 1_000
    # Analysis works on a downscaled copy: JPEG draft mode makes the decode itself cheaper.
    analysis_max_side: int = 1024
    # Videos and animations: a frame every ``frame_every_s`` (plus first and last), near-identical neighbours
    # (PDQ distance <= frame_skip_distance) skipped, at most ``max_sampled_frames``; longer videos are refused,
    # and decoding stops (with a warning) after ``max_video_frames``.
    frame_every_s: float = 1.0
    frame_skip_distance: int = 10
    max_sampled_frames: int = 120
    max_duration_s: float = 2 * 3600
    max_video_frames: int = 200_000


class RuntimeSettings(BaseModel):
    """Where the networks run (analyze/runtime.py): ``cuda`` needs the gpu extra (onnxruntime-gpu)."""

    device: str = "cpu"
    threads: int = 0  # per process; 0: the runtime's default. Scan workers use 1 each (one worker per core).


class FaceSettings(BaseModel):
    engine: str = "dlib"
    # Chosen by bench/detection.py (docs/benchmarks.md): upsample 1 finds far more small faces.
    upsample: int = 1
    detect_max_side: int = 800
    min_face_px: int = 20
    # Cosine-similarity tiers chosen by bench/accuracy.py on half of ../shared/eval-data for a pair false-accept
    # rate of 1e-3 / 1e-4 / under 1e-5 (docs/calibration.md); a match needs at least the low tier.
    tier_low: float = 0.940
    tier_medium: float = 0.957
    tier_high: float = 0.963
    outlier_min_refs: int = 3


class NsfwSettings(BaseModel):
    engine: str = "nudenet"
    only_with_faces: bool = True
    threads: int = 0  # 0: the runtime's default; scan workers use 1 each
    blur_above: float = 0.5  # reports blur found pictures at or above this score (and every hash match)


class HashSettings(BaseModel):
    pdq_max_distance: int = 31
    pdq_min_quality: int = 50
    # Query every scanned picture in its 8 orientations, so rotated and mirrored copies match (bench/robustness.py).
    dihedral: bool = True
    # A protected hash matching more than this many distinct media within an hour puts those matches on hold:
    # a flood is far more often a bad hash (a logo, a meme template) than a thousand reposts.
    flood_limit: int = 20
    # Pictures this close are one near-duplicate group in the catalogue (resized or re-encoded copies).
    near_duplicate_distance: int = 16
    # vPDQ's video-level verdict (ThreatExchange's defaults): a scanned video "is" a protected video when this share
    # of its frames is found in the protected one, and that share of the protected one's frames in it.
    vpdq_query_match_percent: float = 80.0
    vpdq_target_match_percent: float = 0.0


class ScanSettings(BaseModel):
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    queue_per_worker: int = 2
    min_side_px: int = 32
    blank_std: float = 2.0


class FetchSettings(BaseModel):
    timeout_s: float = 30.0
    retries: int = 4
    backoff_s: float = 0.5  # exponential: 0.5, 1, 2, ... s, never sooner than a Retry-After
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0  # a server asking for a longer pause fails the request instead
    max_redirects: int = 5
    user_agent: str = "likeness-scanner/0.1 (self-hosted likeness protection; respects robots.txt)"
    # Politeness per host: a token bucket of ``burst_per_host`` refilled at ``rate_per_host`` requests a second
    # (a robots.txt Crawl-delay can only slow it down), ``concurrency`` requests in flight in all.
    rate_per_host: float = 2.0
    burst_per_host: int = 4
    concurrency: int = 8
    respect_robots: bool = True
    # After this many transient failures in a row a host is left alone for the cooldown.
    breaker_failures: int = 5
    breaker_cooldown_s: float = 60.0
    # Off by default (SSRF guard); an operator scanning an intranet on purpose may turn it on.
    allow_private_networks: bool = False


class CrawlSettings(BaseModel):
    # Two-pass: analyse a platform's small rendition first, fetch the original only when it shows a face.
    two_pass: bool = True
    thumb_width: int = 450  # CivitAI's first-pass rendition (bench/two_pass.py compares 450 and 320)
    videos: bool = True  # False: video items are recorded as skipped, not downloaded
    min_side_px: int = 100  # items the platform says are smaller are skipped before download
    max_empty_pages: int = 10  # an empty page with a next cursor is not the end, but this many in a row is
    throttle_wait_s: float = 60.0  # a "too many requests" body: wait this long (at most) before asking again
    civitai_url: str = "https://civitai.com"
    civitai_api_key: SecretStr | None = None
    reddit_url: str = "https://www.reddit.com"
    deviantart_rss_url: str = "https://backend.deviantart.com"
    deviantart_api_url: str = "https://www.deviantart.com"
    deviantart_client_id: str | None = None
    deviantart_client_secret: SecretStr | None = None


class Settings(BaseSettings):
    """Environment variables use the ``LIKENESS_`` prefix and ``__`` for nesting: LIKENESS_FACES__UPSAMPLE=0."""

    model_config = SettingsConfigDict(env_prefix="LIKENESS_", env_nested_delimiter="__")

    home: Path = Field(default_factory=lambda: Path(user_data_dir("likeness")))
    database_url: str | None = None
    secret_key: str | None = None
    analyzers: list[str] = ["prefilter", "pdq", "faces", "nsfw", "provenance"]
    keep_reference_crops: bool = True
    log_level: str = "WARNING"
    runtime: RuntimeSettings = RuntimeSettings()
    media: MediaLimits = MediaLimits()
    faces: FaceSettings = FaceSettings()
    nsfw: NsfwSettings = NsfwSettings()
    hashes: HashSettings = HashSettings()
    scan: ScanSettings = ScanSettings()
    fetch: FetchSettings = FetchSettings()
    crawl: CrawlSettings = CrawlSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
