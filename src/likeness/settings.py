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
    # Refused from what a file declares, before decoding (media/containers.py; bench/hostile.py measures them).
    # Pillow decodes every frame of an animation onto the whole canvas, ~4-12 ns a canvas pixel here: a 6 KB GIF
    # of 200 frames on a 4000x4000 canvas (3.2 G pixels) took 38 s; 1 G pixels stays within a few seconds and
    # admits a 10 s loop of 1080p frames at 30 fps (0.6 G). Each progressive JPEG scan is another pass over every
    # coefficient, ~1.3 ns a pixel: 1000 scans of a 7000x7000 picture (290 KB) took 72 s; libjpeg's own scripts
    # use 6 (grey) to 10 (colour) scans, so 64 is generous and costs at most ~5 s at the pixel limit.
    max_animation_pixels: int = 1_000_000_000
    max_jpeg_scans: int = 64


class RuntimeSettings(BaseModel):
    """Where the networks run (analyze/runtime.py): ``cuda`` needs the gpu extra (onnxruntime-gpu)."""

    device: str = "cpu"
    threads: int = 0  # per process; 0: the runtime's default. Scan workers use 1 each (one worker per core).


DLIB_MODEL = "dlib_face_recognition_resnet_model_v1"
# The model whose vectors each engine computes: the "onnx" engine runs dlib's own network, so its vectors are dlib's
# (held within 1e-5 by tests/test_face_engine.py) and subjects enrolled with either engine match faces of both.
ENGINE_MODELS = {"onnx": DLIB_MODEL, "dlib": DLIB_MODEL}


class FaceTiers(BaseModel):
    """Cosine-similarity tiers of one model; a match needs at least ``low``."""

    low: float
    medium: float
    high: float


class FaceSettings(BaseModel):
    # "onnx": dlib's network on ONNX Runtime (analyze/dlib_onnx.py; the same vectors, ~20x faster); "dlib": dlib-bin.
    engine: str = "onnx"
    # "mtcnn" (analyze/mtcnn.py; WIDER recall 0.80 against HOG's 0.06, bench/detection.py) or "hog" (dlib's)
    detector: str = "mtcnn"
    batch_size: int = 32  # face chips per pass through the embedding network (bench/embeddings.py)
    # A still with no upright face is tried turned 90, 270 and 180 degrees (a lost EXIF orientation tag).
    rotations: bool = True
    # Chosen by bench/detection.py (docs/benchmarks.md): upsample 1 finds far more small faces.
    upsample: int = 1
    detect_max_side: int = 800
    min_face_px: int = 20
    # MTCNN detector (analyze/mtcnn.py), chosen by bench/detection.py: a candidate passes a stage above its threshold.
    mtcnn_pnet_threshold: float = 0.7
    mtcnn_rnet_threshold: float = 0.7
    mtcnn_onet_threshold: float = 0.8
    mtcnn_scale_factor: float = 0.709  # between pyramid levels
    # MTCNN's working size. Its pyramid starts from min_face_px in picture pixels, so a smaller working copy saves
    # P-net nothing but gives R-net and O-net blurrier crops (WIDER recall 0.77 and 7 false boxes at 800 px, 0.80
    # and 2 at 1024).
    mtcnn_max_side: int = 1024
    mtcnn_nms: float = 0.7  # final overlap (of the smaller box) above which two faces are one
    # Crowds: only the best-scoring candidates go on to R-net and O-net, which cost per candidate (O-net ~1 ms).
    mtcnn_max_rnet: int = 2000
    mtcnn_max_onet: int = 500
    # A coarse pass without the two finest pyramid levels first, standing alone when every face it finds is at least
    # mtcnn_coarse_enough times the smallest it can see: about half the cost on portraits, the same answers.
    mtcnn_coarse_first: bool = True
    mtcnn_coarse_enough: float = 2.0
    # Cosine-similarity tiers chosen by bench/accuracy.py on half of ../shared/eval-data for a pair false-accept
    # rate of 1e-3 / 1e-4 / under 1e-5 (docs/calibration.md); a match needs at least the low tier.
    tier_low: float = 0.940
    tier_medium: float = 0.957
    tier_high: float = 0.963
    # Tiers of other models (vectors of different models never compare, and neither do their thresholds): a model
    # without calibrated tiers is a configuration error, never a guess.
    model_tiers: dict[str, FaceTiers] = {}
    # A face is one person: it names only the subjects within this similarity of its best one. Look-alikes then
    # stop taking each other's faces (bench/vs_face_recognition.py: all 18 false names were runner-ups, 0.008 to
    # 0.05 below a correct best; no true name was ever a runner-up), while a face nearly as like two subjects
    # names both, for a reviewer to decide.
    runner_up_margin: float = 0.02
    outlier_min_refs: int = 3

    def tiers(self, model: str) -> FaceTiers:
        if model in self.model_tiers:
            return self.model_tiers[model]
        if model == DLIB_MODEL:
            return FaceTiers(low=self.tier_low, medium=self.tier_medium, high=self.tier_high)
        raise ValueError(f"no calibrated tiers for face model {model!r}: set LIKENESS_FACES__MODEL_TIERS")

    @property
    def model(self) -> str:
        """The model of the configured engine's vectors."""
        return ENGINE_MODELS.get(self.engine, self.engine)


class NsfwSettings(BaseModel):
    engine: str = "nudenet"
    only_with_faces: bool = True
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
    # The budget of one file, enforced from outside the worker (services/pool.py): past it the worker is killed and
    # the file recorded as too_costly. 30 s is ~100x a normal picture's analysis on one core here (a 1080p video's
    # 120 sampled frames take ~5 s); 1 GiB of worker memory holds the models (~0.3 GiB) and the largest picture
    # the pixel limit admits (bench/hostile.py measures both).
    file_seconds: float = 30.0
    file_memory_mib: int = 1024
    # Small files go to a worker together, so their faces share one pass through the embedding network.
    batch_files: int = 8
    batch_max_bytes: int = 2 * 1024 * 1024
    inflight_mib: int = 256  # bytes read ahead of the workers, at most (a file bigger than this goes alone)
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
    # Off by default (SSRF guard, fetch/guard.py); an operator scanning an intranet on purpose may turn it on. It
    # lifts the private-network rule only (loopback, RFC 1918, CGN, ULA, benchmarking): link-local and cloud
    # metadata addresses and names, and everything that is not a unicast host, stay refused.
    allow_private_networks: bool = False


class PoliteSettings(BaseModel):
    # Per-host buckets, Retry-After pauses and breakers in the store (fetch/shared.py), so that every crawling
    # process on every machine spends from one bucket per host. Off: each process keeps its own (N processes then
    # send N times the rate). Fetchers built without a store always keep their own.
    shared: bool = True
    statement_timeout_ms: int = 5000  # a store that does not answer fails the request (StoreFailed), never hangs


class CrawlSettings(BaseModel):
    # Two-pass: analyse a platform's small rendition first, fetch the original only when it shows a face.
    two_pass: bool = True
    thumb_width: int = 450  # CivitAI's first-pass rendition (bench/two_pass.py compares 450 and 320)
    videos: bool = True  # False: video items are recorded as skipped, not downloaded
    min_side_px: int = 100  # items the platform says are smaller are skipped before download
    max_empty_pages: int = 10  # an empty page with a next cursor is not the end, but this many in a row is
    max_items_per_page: int = 2000  # a page listing more (a hostile HTML page) keeps the first ones, with a warning
    max_url_length: int = 8192  # longer media URLs are skipped with a reason (browsers and CDNs stop near 8 KB)
    throttle_wait_s: float = 60.0  # a "too many requests" body: wait this long (at most) before asking again
    civitai_url: str = "https://civitai.com"
    civitai_api_key: SecretStr | None = None
    reddit_url: str = "https://www.reddit.com"
    deviantart_rss_url: str = "https://backend.deviantart.com"
    deviantart_api_url: str = "https://www.deviantart.com"
    deviantart_client_id: str | None = None
    deviantart_client_secret: SecretStr | None = None


class AbuseSettings(BaseModel):
    """Abuse controls of the API (abuse/): shared by every API process through PostgreSQL.

    Rates: a human-driven client makes well under a request a second; an integration that batches its hash
    lookups needs tens. 10/s sustained (36,000 an hour) with a burst of 50 per token serves both, and an IP gets
    twice that because several accounts share one NAT. A bucket's rate and size scale with the caller's trust
    (``trust/100``, never under ``min_rate_factor``), so a caller that keeps sending rejected inputs slows down
    without anyone acting. Trust falls by ``penalties[reason]`` and recovers ``recovery_per_hour``: from 0 back to
    100 in 20 hours, slow enough that a flood cannot simply wait out a short pause.
    """

    enabled: bool = True
    token_rate_per_s: float = 10.0
    token_burst: float = 50.0
    ip_rate_per_s: float = 20.0
    ip_burst: float = 100.0
    min_rate_factor: float = 0.1
    initial_trust: float = 100.0
    recovery_per_hour: float = 5.0
    # Invalid images are cheap to send and costly to refuse; NSFW where it is not allowed is the worst input.
    penalties: dict[str, float] = {
        "invalid_image": 5.0,
        "duplicate": 2.0,
        "nsfw": 10.0,
        "rate_limited": 1.0,
        "enumeration": 20.0,
        "invalid_token": 5.0,  # guessing tokens: 20 wrong ones take an IP to a tenth of its rate
    }
    default_penalty: float = 5.0
    # Coordinated attack: the same picture (SHA-256, or PDQ within this distance: resized or re-encoded copies)
    # from this many distinct accounts within the window. Three: two people may share one picture by chance.
    coordinated_accounts: int = 3
    coordinated_window_s: float = 3600.0
    coordinated_pdq_distance: int = 16
    # Enumeration: more distinct faces or hashes than this from one account or IP within the window is mining
    # (recovering a protected PDQ by hill-climbing takes hundreds of probes), throttled for ``throttle_s``.
    enumeration_max_distinct: int = 200
    enumeration_window_s: float = 3600.0
    enumeration_throttle_s: float = 3600.0
    # Integrations that look up every picture their platform receives (HMA-style hash lookups) probe thousands of
    # distinct hashes an hour by design: the operator names their accounts here, after vetting them.
    enumeration_exempt_accounts: list[int] = []
    # Admitted requests are the normal case and belong to the access log: at 1,000 requests a second one row
    # each would be 86 million rows a day. Refusals, penalties, flags, holds and operator actions are always logged.
    log_admits: bool = False


class ApiSettings(BaseModel):
    """The HTTP API (api/). Uploads above ``max_upload_bytes`` (the media limit by default) are refused with 413
    before their body is read; any other request body above ``max_body_bytes``. Analysis of uploads runs in
    ``analysis_workers`` watched worker processes owned by the API process (services/check.py), under the scan
    budgets (``scan.file_seconds``, ``scan.file_memory_mib``)."""

    max_upload_bytes: int = 64 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    max_photos: int = 20  # reference photos in one enrollment request
    max_hashes: int = 1000  # PDQ hashes in one lookup or protect request
    max_urls: int = 100  # URLs in one scan request
    analysis_workers: int = 1
    token_days: float = 90.0  # a token's lifetime when none is asked for
    # Behind a reverse proxy the client's address is in X-Forwarded-For; trusted only from these peers.
    trusted_proxies: list[str] = []
    # A token's last use is written at most this often (a write on every request would serialise on the row).
    last_used_every_s: float = 60.0


class WebSettings(BaseModel):
    """The web pages (web/) on the API's app. A login is a session: an API token of the account's role (its digest
    kept, like any token's; listed and revocable with the others) in an HttpOnly, SameSite=Strict cookie, lasting
    ``session_hours``. The cookie is ``Secure`` when the request came over https (behind a proxy that terminates
    TLS, set ``cookie_secure``). ``signup`` lets anyone make a subject account and enroll themselves; off, an
    operator makes the account (``likeness users add NAME --role subject``) after checking who the person is,
    which is what stops someone enrolling another person's face to search for it. ``consent_version`` names the
    consent text shown at enrollment (registry/consent/<version>.txt)."""

    session_hours: float = 12.0
    cookie_secure: bool | None = None  # None: when the request is https
    signup: bool = False
    consent_version: str = "1"
    page_size: int = 50
    picture_cost: float = 0.1  # abuse tokens a picture in a page spends (a page spends 1)
    protect_bank: str = "ncii"  # where hashes protected from the web page go (made on first use)


class TierSettings(BaseModel):
    """What a subject of one tier gets (likeness/schedule): how often its face is searched for again across the
    catalogue (``recheck_every_s``), and which follow-ups run for its matches. ``priority`` orders its queued jobs
    (higher first)."""

    recheck_every_s: int
    retro_search: bool = True
    evidence_capture: bool = False
    takedown_drafts: bool = False
    alerts: bool = False
    priority: int = 0


def _tiers() -> dict[str, TierSettings]:
    """Seed 000's TIER_CONFIG: free weekly with basic matching (and its alerts: being told is the point); protected
    daily with evidence capture and takedown drafts; premium every six hours with everything and first place in the
    queues."""
    return {
        "free": TierSettings(recheck_every_s=7 * 86400, alerts=True),
        "protected": TierSettings(
            recheck_every_s=86400, evidence_capture=True, takedown_drafts=True, alerts=True, priority=5
        ),
        "premium": TierSettings(
            recheck_every_s=6 * 3600, evidence_capture=True, takedown_drafts=True, alerts=True, priority=10
        ),
    }


class ScheduleSettings(BaseModel):
    """The scheduler (likeness/schedule): a periodic task, once a minute, defers the crawls of sources whose
    cadence has come round and the re-searches of subjects whose tier's cadence has. A subject without a tier set
    is ``default_tier``."""

    default_tier: str = "free"
    tiers: dict[str, TierSettings] = Field(default_factory=_tiers)
    # /health and /v1/metrics count a worker alive while its heartbeat is this recent (procrastinate beats every 10 s).
    worker_stale_s: float = 30.0


class AlertSettings(BaseModel):
    """Alerts (likeness/alerts): new matches at or above a rule's tier go to webhooks (HMAC-SHA256-signed JSON, no
    redirects followed, the SSRF guard of ``fetch.allow_private_networks`` on every address) and email digests over
    SMTP. A send is tried ``retries`` times with exponential backoff from ``backoff_s`` (tenacity); a delivery that
    failed ``max_attempts`` sends is marked failed with its error. Honeypot plants are missed once ``honeypot_grace_s``
    has passed without a match."""

    enabled: bool = True
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_attempts: int = 5
    batch: int = 200  # deliveries sent per rule per run
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_from: str = "likeness@localhost"
    honeypot_dir: Path | None = None  # where honeypot copies are planted; default LIKENESS_HOME/honeypots
    honeypot_grace_s: float = 86400.0
    honeypot_cron: str = "17 * * * *"
    send_cron: str = "* * * * *"


class QueueSettings(BaseModel):
    """The task queue (likeness/worker: procrastinate on the store's database). A job that raises is retried
    ``retries`` times, waiting ``retry_wait_s ** (attempt + 1)`` seconds before each (exponential back-off), then
    ends ``failed`` with its error (``likeness jobs list``). A worker that stops sending heartbeats for
    ``stalled_after_s`` is dead: a periodic check (``stall_check_cron``; a 6th field counts seconds) retries its
    jobs."""

    concurrency: int = 1  # jobs one worker process runs at once; each analysing job has an analysis process
    retries: int = 4
    retry_wait_s: int = 2
    heartbeat_s: float = 10.0
    stalled_after_s: float = 30.0
    stall_check_cron: str = "* * * * *"
    poll_s: float = 5.0  # a worker looks for jobs this often when no notification came
    keep_succeeded_h: int = 24  # succeeded jobs are then deleted (hourly); failed ones stay until retried


class EvidenceSettings(BaseModel):
    # Frozen evidence (cases/evidence.py): pages captured in headless Chromium, the system's browser (apt's
    # chromium; Playwright never downloads one). The browser obeys the SSRF guard: every request a page makes is
    # refused unless its host resolves only to public addresses (fetch.allow_private_networks applies), or its
    # exact ``host:port`` is in ``allow_hosts`` (a page server on a private network that is meant to be captured;
    # other ports and addresses on that network stay refused).
    chromium: Path = Path("/usr/bin/chromium")
    capture_on_confirm: bool = True  # a match seen at a URL is captured when a reviewer confirms it
    allow_hosts: list[str] = []
    timeout_s: float = 30.0
    viewport_width: int = 1280
    viewport_height: int = 900


class NoticeSettings(BaseModel):
    """Takedown notices (cases/notices.py): who signs them, and the deadlines the law leaves open. TAKE IT DOWN's
    48 hours and GDPR's one month are the law's own and not settings."""

    # The sender: the signature and contact details every notice must carry (DMCA 512(c)(3)(A), (D)).
    sender_name: str = "(the sender's name)"
    sender_email: str = "(the sender's email)"
    sender_address: str = "(the sender's postal address)"
    sender_phone: str = ""
    # DMCA 512(c)(1)(C) asks for removal "expeditiously": the hours after which a notice counts as unanswered.
    dmca_hours: int = Field(default=72, ge=1)
    # A platform's own report form promises no time: the hours after which a report counts as unanswered.
    platform_hours: int = Field(default=72, ge=1)


class Settings(BaseSettings):
    """Environment variables use the ``LIKENESS_`` prefix and ``__`` for nesting: LIKENESS_FACES__UPSAMPLE=0."""

    model_config = SettingsConfigDict(env_prefix="LIKENESS_", env_nested_delimiter="__")

    home: Path = Field(default_factory=lambda: Path(user_data_dir("likeness")))
    database_url: str | None = None
    secret_key: str | None = None
    # The master key kept apart from the data (another volume, a secrets mount): a file holding a Fernet key.
    key_file: Path | None = None
    # Owners' data keys, one file each (store/crypto.py); default LIKENESS_HOME/keyring. Never in the database.
    keyring: Path | None = None
    # The audit chain's head, checkpointed outside the database (store/audit.py); default LIKENESS_HOME/audit-head.json
    audit_checkpoint: Path | None = None
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
    polite: PoliteSettings = PoliteSettings()
    crawl: CrawlSettings = CrawlSettings()
    abuse: AbuseSettings = AbuseSettings()
    api: ApiSettings = ApiSettings()
    queue: QueueSettings = QueueSettings()
    alerts: AlertSettings = AlertSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    notices: NoticeSettings = NoticeSettings()
    evidence: EvidenceSettings = EvidenceSettings()
    web: WebSettings = WebSettings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
