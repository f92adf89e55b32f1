"""Checking an uploaded picture or video: analysed in a watched worker, matched, and nothing stored.

The bytes go to an ``AnalysisPool`` worker (services/pool.py) under the same decode limits and per-file wall-time
and memory budgets as a scan: a hostile upload costs its worker, never the API process. The pool belongs to one
long-lived ``Checker`` per API process, driven by a thread of its own; request threads hand it bytes through a
queue and wait on a future. The result is matched by ``match.indexes`` without creating a match or a media row:
the upload is not catalogued, and its bytes are dropped when the request ends (only hashes leave this module).

What a caller sees is narrowed here, once: face matches only of the subjects it may see, hash matches only when
it may see the banks (``CheckScope``). Nobody can run a face against the whole registry to find out who it is.
"""

from __future__ import annotations

import hashlib
import itertools
import queue
import threading
from collections.abc import Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field

from likeness.analyze import Analysis
from likeness.errors import InvalidInput, LikenessError, TooLarge
from likeness.match.faces import FaceHit
from likeness.match.hashes import Hit as HashHit
from likeness.match.indexes import Hit, match_analysis
from likeness.media.decode import VIDEO_FORMATS, sniff
from likeness.services.app import App
from likeness.services.pool import AnalysisPool
from likeness.settings import Settings

_IDLE_S = 0.1


@dataclass(frozen=True)
class CheckScope:
    """What a caller may learn: ``subjects`` None for every subject, else only these; ``hashes``: bank matches."""

    subjects: set[int] | None
    hashes: bool


@dataclass(frozen=True)
class CheckedFace:
    box: tuple[int, int, int, int]
    det_score: float
    quality: float
    frame: int


@dataclass(frozen=True)
class FaceMatch:
    subject_id: int
    similarity: float
    tier: str
    face: int  # index into Checked.faces


@dataclass(frozen=True)
class HashMatch:
    hash_id: int
    bank: str
    submission: str | None
    distance: int
    frame: int | None


@dataclass(frozen=True)
class Checked:
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
    faces: list[CheckedFace]
    face_matches: list[FaceMatch]
    hash_matches: list[HashMatch]
    sampled_frames: list[int] = field(default_factory=list)  # videos and animations: the frames analysed
    # what the abuse controls count as probes of the registry: ("face", embedding) and ("hash", PDQ); not shown
    probes: list[tuple[str, bytes]] = field(default_factory=list, repr=False)


class Checker:
    """The API process's analysis workers and matching indexes. Thread-safe; ``close`` stops the workers."""

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.settings = settings
        self._workers = workers or settings.api.analysis_workers
        self._inbox: queue.Queue[tuple[Hashable, bytes, Future[Analysis | LikenessError]]] = queue.Queue()
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stop = threading.Event()

    def analyse(self, data: bytes) -> Analysis:
        """The Analysis of ``data``, or its MediaError / TooCostly / AnalysisFailed raised."""
        self._ensure_started()
        result: Future[Analysis | LikenessError] = Future()
        self._inbox.put((next(self._keys), data, result))
        outcome = result.result()
        if isinstance(outcome, LikenessError):
            raise outcome
        return outcome

    def match(self, app: App, analysis: Analysis) -> list[Hit]:
        """Hits of ``analysis`` against the registry, through this process's indexes; nothing stored."""
        with app.store.transaction() as session:
            return match_analysis(session, analysis, app.settings, app.indexes())

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _ensure_started(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="likeness-check", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        """The one thread that touches the pool (it is not thread-safe)."""
        waiting: dict[Hashable, Future[Analysis | LikenessError]] = {}
        with AnalysisPool(self.settings, self._workers) as pool:
            try:
                while not self._stop.is_set():
                    self._take(pool, waiting, block=not waiting)
                    for key, outcome in pool.collect(timeout=_IDLE_S) if waiting else []:
                        waiting.pop(key).set_result(outcome)
            except BaseException as exc:  # the pool cannot start (a model missing): every waiter hears why
                for result in waiting.values():
                    result.set_exception(exc)
                self._fail_inbox(exc)
                self._thread = None
                raise

    def _take(self, pool: AnalysisPool, waiting: dict[Hashable, Future[Analysis | LikenessError]], block: bool) -> None:
        try:
            key, data, result = self._inbox.get(timeout=_IDLE_S) if block else self._inbox.get_nowait()
        except queue.Empty:
            return
        waiting[key] = result
        pool.submit(key, data)

    def _fail_inbox(self, exc: BaseException) -> None:
        while True:
            try:
                _, _, result = self._inbox.get_nowait()
            except queue.Empty:
                return
            result.set_exception(exc)


def sniff_upload(data: bytes, settings: Settings, *, video: bool | None = None) -> str:
    """The format from the magic bytes (UnsupportedFormat: 415), before any worker sees the bytes.
    ``video``: True for a batch (GIF, animated WebP or PNG, video), False for a still, None for either."""
    if len(data) > settings.media.max_bytes:
        raise TooLarge(f"the upload is over the {settings.media.max_bytes} byte limit")
    fmt = sniff(data)
    if video is False and fmt in VIDEO_FORMATS:
        raise InvalidInput(f"a {fmt} video goes to /v1/batch")
    return fmt


def check(app: App, checker: Checker, data: bytes, scope: CheckScope) -> Checked:
    """Analyse and match ``data`` (already sniffed); what ``scope`` may not see is left out."""
    analysis = checker.analyse(data)
    hits = checker.match(app, analysis) if not analysis.skipped else []
    return _checked(data, analysis, hits, scope)


def _checked(data: bytes, analysis: Analysis, hits: list[Hit], scope: CheckScope) -> Checked:
    faces = [CheckedFace(f.box, round(f.det_score, 4), round(f.quality, 4), f.frame) for f in analysis.faces]
    return Checked(
        sha256=hashlib.sha256(data).hexdigest(),
        format=analysis.format,
        width=analysis.width,
        height=analysis.height,
        frame_count=analysis.frame_count,
        duration_s=analysis.duration_s,
        pdq=analysis.pdq.hex() if analysis.pdq else None,
        pdq_quality=analysis.pdq_quality,
        nsfw=analysis.nsfw,
        provenance=dict(analysis.provenance),
        skipped=analysis.skipped,
        warnings=list(analysis.warnings),
        faces=faces,
        face_matches=_face_matches(hits, scope),
        hash_matches=_hash_matches(hits, scope),
        sampled_frames=sorted({0, *(f.frame for f in analysis.faces), *(n for n, _ in analysis.frame_pdqs)}),
        probes=_probes(analysis),
    )


def _probes(analysis: Analysis) -> list[tuple[str, bytes]]:
    faces = [("face", face.embedding.astype("<f4").tobytes()) for face in analysis.faces]
    hashes = [("hash", analysis.pdq)] if analysis.pdq else []
    return faces + hashes + [("hash", digest) for _, digest in analysis.frame_pdqs]


def held(data: bytes, fmt: str) -> Checked:
    """What a shadow-banned caller is answered: its upload accepted, nothing analysed, nothing found."""
    digest = hashlib.sha256(data).hexdigest()
    return Checked(digest, fmt, 0, 0, 1, None, None, None, None, {}, None, [], [], [], [], [0])


def _face_matches(hits: list[Hit], scope: CheckScope) -> list[FaceMatch]:
    return [
        FaceMatch(h.subject_id, round(float(h.similarity), 4), h.tier, h.face_idx)
        for h in hits
        if isinstance(h, FaceHit) and (scope.subjects is None or h.subject_id in scope.subjects)
    ]


def _hash_matches(hits: list[Hit], scope: CheckScope) -> list[HashMatch]:
    if not scope.hashes:
        return []
    return [
        HashMatch(h.hash_id, h.bank, h.submission, int(h.distance), h.frame) for h in hits if isinstance(h, HashHit)
    ]


@dataclass(frozen=True)
class FrameRisk:
    frame: int
    faces: int
    face_matches: int
    hash_matches: int


@dataclass(frozen=True)
class Risk:
    """A video's or animation's verdict over its sampled frames. ``level``: high when a protected hash matched, or
    a subject's face in a picture scored NSFW at or above ``nsfw.blur_above``; medium on any face match; low on
    NSFW alone; none otherwise. NSFW is scored per file (the highest over the frames with a face), not per frame."""

    level: str
    max_nsfw: float | None
    faces: int
    face_matches: int
    hash_matches: int
    frames: list[FrameRisk]


def risk(checked: Checked, settings: Settings) -> Risk:
    frames = [_frame_risk(checked, n) for n in checked.sampled_frames]
    nsfw = checked.nsfw is not None and checked.nsfw >= settings.nsfw.blur_above
    if checked.hash_matches or (checked.face_matches and nsfw):
        level = "high"
    elif checked.face_matches:
        level = "medium"
    else:
        level = "low" if nsfw else "none"
    return Risk(level, checked.nsfw, len(checked.faces), len(checked.face_matches), len(checked.hash_matches), frames)


def _frame_risk(checked: Checked, frame: int) -> FrameRisk:
    faces = [n for n, face in enumerate(checked.faces) if face.frame == frame]
    face_matches = sum(1 for m in checked.face_matches if m.face in faces)
    hash_matches = sum(1 for m in checked.hash_matches if (m.frame or 0) == frame)
    return FrameRisk(frame, len(faces), face_matches, hash_matches)
