"""``scan``: discover -> read -> skip known bytes -> analyse in worker processes -> catalogue -> match.

The steps are the task functions of services/tasks.py; ``Run`` is what one process adds around them: the worker
pool, files in flight, in-scan duplicates, two-pass thumbnails and the counters. Each file is committed in its
own transaction (media, faces, sighting, matches together), so a scan killed at any point resumes by skipping
what was committed and redoing only what was in flight. No single file stops a scan: reading, analysis (under a
per-file budget, services/pool.py) and storing each fail as a recorded error of that file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from likeness.analyze import Analysis, pipeline, sha256
from likeness.catalogue import crawls
from likeness.catalogue.near_duplicates import NearDuplicates
from likeness.errors import LikenessError, MediaError, StoreFailed
from likeness.fetch import Fetcher, redact
from likeness.log import get_logger
from likeness.match.indexes import Indexes
from likeness.media import sniff
from likeness.services import fetching, tasks
from likeness.services.pool import AnalysisPool
from likeness.settings import Settings
from likeness.sources import MediaRef, Refused, discover, read_head
from likeness.sources.local import MEDIA_SUFFIXES
from likeness.store import Store
from likeness.text import clean

if TYPE_CHECKING:
    from likeness.services.app import App

log = get_logger(__name__)


@dataclass(frozen=True)
class FileError:
    location: str
    kind: str
    message: str
    recorded: bool  # stored against the media (not retried) or transient (retried next scan)


@dataclass
class ScanSummary:
    files: int = 0
    analyzed: int = 0
    already_known: int = 0
    duplicates_in_scan: int = 0
    near_duplicates: int = 0
    prefiltered: int = 0
    not_media: int = 0  # files in folders whose content is not a picture or video
    faces: int = 0
    face_matches: int = 0
    hash_matches: int = 0
    upgraded: int = 0  # two-pass: renditions with a face whose original was then fetched
    errors: list[FileError] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def files_per_s(self) -> float:
        return self.files / self.elapsed_s if self.elapsed_s else 0.0


Progress = Callable[[ScanSummary, int], None]


@dataclass
class _Pending:
    ref: MediaRef
    digest: str
    size: int = 0


def scan(app: App, targets: list[str], *, actor: str, progress: Progress | None = None) -> ScanSummary:
    """Files, folders and http(s) URLs; matches are audited as ``actor``'s."""
    settings = app.settings
    found = list(discover(targets))
    summary, started = ScanSummary(), time.perf_counter()
    with ExitStack() as stack:
        urls = any(isinstance(r, MediaRef) and r.is_url for r in found)
        fetcher = stack.enter_context(fetching.fetcher(settings, app.store)) if urls else None  # shared limits
        run = Run(app.store, settings, summary, stack, fetcher, actor=actor, indexes=app.indexes())
        for ref in found:
            if isinstance(ref, Refused):
                summary.files += 1
                run.error(MediaRef(ref.location), ref.error, recorded=False)
            else:
                run.submit(ref)
            summary.elapsed_s = time.perf_counter() - started
            if progress:
                progress(summary, len(found))
        run.drain(0)
    summary.elapsed_s = time.perf_counter() - started
    if progress:
        progress(summary, len(found))
    return summary


def check_settings(settings: Settings) -> None:
    """An unknown analyser, engine or device stops a scan before it starts, not with an error on every file."""
    pipeline.check(settings)


class Run:
    """The state of one scan: the worker pool (started on first use), files in flight and in-scan duplicates."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        summary: ScanSummary,
        stack: ExitStack,
        fetcher: Fetcher | None,
        *,
        actor: str,
        indexes: Indexes | None = None,
    ) -> None:
        check_settings(settings)
        self.store, self.settings, self.summary, self.stack, self.fetcher = store, settings, summary, stack, fetcher
        self.actor = actor
        self.indexes = indexes or Indexes(settings)
        self.groups = NearDuplicates(settings.hashes.near_duplicate_distance, settings.hashes.pdq_min_quality)
        self.pool: AnalysisPool | None = None
        self.inflight: dict[Hashable, _Pending] = {}
        self.waiting: dict[str, list[MediaRef]] = {}  # digest in flight -> further refs with the same bytes
        scan = settings.scan
        self.capacity = scan.workers * (scan.queue_per_worker + scan.batch_files)
        self.inflight_bytes = 0

    def submit(self, ref: MediaRef, data: bytes | LikenessError | None = None) -> None:
        """Analyse one media: its bytes given (crawls fetch a page's media together) or read here. A file in a
        folder whose content is not media is counted and left alone."""
        if data is None and ref.in_folder and not _looks_like_media(ref):
            self.summary.not_media += 1
            return
        self.summary.files += 1
        try:
            if isinstance(data, LikenessError):
                raise data
            data = data if data is not None else self.read(ref)
        except LikenessError as exc:
            self.error(ref, exc, recorded=False)
            return
        self._submit_bytes(ref, data)

    def read(self, ref: MediaRef, location: str | None = None) -> bytes:
        return tasks.read(ref, self.settings, self.fetcher, location)

    def _submit_bytes(self, ref: MediaRef, data: bytes, from_drain: bool = False) -> None:
        digest = sha256(data)
        if digest in self.waiting:
            self.waiting[digest].append(ref)
            self.summary.duplicates_in_scan += 1
            return
        try:
            if tasks.sight_known(self.store, ref, digest, self.indexes, actor=self.actor) is not None:
                self.summary.already_known += 1
                return
        except SQLAlchemyError as exc:
            self.error(ref, StoreFailed(_db_message(exc)), recorded=False)
            return
        if not from_drain:  # called while draining (two-pass), one more in flight is fine; draining again is not
            self.drain(self.capacity - 1)
        self.waiting[digest] = []
        self.inflight[digest] = _Pending(ref, digest, len(data))
        self.inflight_bytes += len(data)
        self._pool().submit(digest, data)

    def drain(self, keep: int) -> None:
        """Collect finished analyses until at most ``keep`` files (and ``scan.inflight_mib`` of their bytes) are in
        flight: bounded memory, steady workers."""
        budget = self.settings.scan.inflight_mib * 2**20
        while len(self.inflight) > keep or (self.inflight and self.inflight_bytes > budget):
            assert self.pool is not None
            for key, outcome in self.pool.collect():
                pending = self.inflight.pop(key)
                self.inflight_bytes -= pending.size
                self._commit(pending, outcome)

    def _commit(self, pending: _Pending, outcome: Analysis | LikenessError) -> None:
        """One transaction per file; a database error on it is recorded against that file, and the scan goes on."""
        if isinstance(outcome, Analysis) and outcome.faces and pending.ref.upgrade_url and self._upgrade(pending):
            return
        extra = self.waiting.pop(pending.digest, [])
        try:
            self._store_outcome(pending, outcome, extra)
        except SQLAlchemyError as exc:
            log.warning("scan.store_failed", location=pending.ref.location, error=_db_message(exc))
            self._store_failure(pending, StoreFailed(f"the database refused this file's analysis: {_db_message(exc)}"))

    def _store_outcome(self, pending: _Pending, outcome: Analysis | LikenessError, extra: list[MediaRef]) -> None:
        stored = self._store(pending, outcome, extra)
        if isinstance(outcome, LikenessError):
            self.error(pending.ref, outcome, recorded=True)
            return
        self.summary.face_matches += stored.face_matches
        self.summary.hash_matches += stored.hash_matches
        if stored.created and stored.canonical_id is None:
            self.groups.started(stored.media_id, outcome)
        self.summary.near_duplicates += stored.created and stored.canonical_id is not None
        self.summary.analyzed += 1
        self.summary.faces += len(outcome.faces)
        self.summary.prefiltered += outcome.skipped is not None

    def _store_failure(self, pending: _Pending, error: StoreFailed) -> None:
        """The file's analysis could not be stored: store the failure instead (so it is not re-analysed forever)."""
        try:
            self._store(pending, error, [])
        except SQLAlchemyError:
            self.error(pending.ref, error, recorded=False)
            return
        self.error(pending.ref, error, recorded=True)

    def _upgrade(self, pending: _Pending) -> bool:
        """Two-pass: the rendition shows a face, so the original is fetched and analysed in its place (and so are
        the originals of other items that had the same rendition). When the original cannot be had, the
        rendition's analysis is kept instead (False)."""
        ref, original = pending.ref, pending.ref.upgrade_url
        assert original is not None
        try:
            data = self.read(ref, original)
        except LikenessError as exc:
            log.warning("crawl.original_failed", url=original, error=str(exc))
            return False
        self.summary.upgraded += 1
        self._submit_bytes(replace(ref, location=original, upgrade_url=None), data, from_drain=True)
        for other in self.waiting.pop(pending.digest, []):
            self._submit_original(other)
        return True

    def _submit_original(self, ref: MediaRef) -> None:
        location = ref.upgrade_url or ref.location
        try:
            data = self.read(ref, location)
        except LikenessError as exc:
            self.error(ref, exc, recorded=False)
            return
        self._submit_bytes(replace(ref, location=location, upgrade_url=None), data, from_drain=True)

    def _store(self, pending: _Pending, outcome: Analysis | LikenessError, extra: list[MediaRef]) -> tasks.Committed:
        return tasks.commit_analysis(
            self.store, pending.ref, pending.digest, outcome, self.indexes, actor=self.actor, extra=extra,
            groups=self.groups,
        )  # fmt: skip

    def _pool(self) -> AnalysisPool:
        if self.pool is None:
            self.pool = self.stack.enter_context(AnalysisPool(self.settings, self.settings.scan.workers))
        return self.pool

    def error(self, ref: MediaRef, exc: LikenessError, recorded: bool) -> None:
        """A transient failure of a crawled item is recorded as failed, to be retried by the next crawl."""
        message = clean(str(exc), 2000)
        where = redact(ref.location) if ref.raw_path is None else ref.location  # a URL's credentials never shown
        log.info("scan.file_error", location=where, kind=exc.kind, message=message)
        self.summary.errors.append(FileError(where, exc.kind, message, recorded))
        if not recorded and ref.source and ref.key:
            try:
                with self.store.transaction() as session:
                    crawls.record(session, ref.source, ref.key, "failed", where, page_url=ref.page_url, error=message)
            except SQLAlchemyError as db_exc:
                log.warning("scan.item_not_recorded", key=ref.key, error=_db_message(db_exc))


def _looks_like_media(ref: MediaRef) -> bool:
    """In a folder, a file is taken when its content is a picture or video, or its name says it is one (so a
    broken ``.jpg`` is reported, not skipped)."""
    if ref.location.rsplit(".", 1)[-1].lower() in {s.lstrip(".") for s in MEDIA_SUFFIXES}:
        return True
    try:
        sniff(read_head(ref))
    except MediaError:
        return False
    except LikenessError:
        return True  # unreadable: the full read reports why
    return True


def _db_message(exc: SQLAlchemyError) -> str:
    """The database's own reason, without the statement and parameters SQLAlchemy appends (they may be huge)."""
    original = getattr(exc, "orig", None)
    return clean(str(original or exc).splitlines()[0] if str(original or exc) else exc.__class__.__name__, 500)
