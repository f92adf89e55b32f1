"""``scan``: discover -> read -> skip known bytes -> analyse in a process pool -> catalogue -> match.

Each file is committed in its own transaction (media, faces, sighting, matches together), so a scan
killed at any point resumes by skipping what was committed and redoing only what was in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from multiprocessing import get_context

from sqlalchemy.orm import Session

from likeness.analyze import Analysis, sha256
from likeness.catalogue import crawls
from likeness.catalogue import ingest as catalogue
from likeness.catalogue.near_duplicates import NearDuplicates
from likeness.errors import LikenessError
from likeness.fetch import Fetcher, read_location
from likeness.log import get_logger
from likeness.services import workers
from likeness.services.indexes import Indexes
from likeness.settings import Settings
from likeness.sources import MediaRef, discover
from likeness.store import Store

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
    faces: int = 0
    face_matches: int = 0
    hash_matches: int = 0
    upgraded: int = 0  # two-pass: renditions with a face whose original was then fetched
    errors: list[FileError] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def files_per_s(self) -> float:
        return self.files / self.elapsed_s if self.elapsed_s else 0.0

    def as_json(self) -> dict[str, object]:
        return {**asdict(self), "files_per_s": round(self.files_per_s, 2), "elapsed_s": round(self.elapsed_s, 3)}


Progress = Callable[[ScanSummary, int], None]


@dataclass
class _Pending:
    ref: MediaRef
    digest: str


def scan(store: Store, settings: Settings, targets: list[str], progress: Progress | None = None) -> ScanSummary:
    refs = list(discover(targets))
    summary, started = ScanSummary(), time.perf_counter()
    with ExitStack() as stack:
        fetcher = (
            stack.enter_context(Fetcher(settings.fetch, settings.media.max_bytes))
            if any(r.is_url for r in refs)
            else None
        )
        run = Run(store, settings, summary, stack, fetcher)
        for ref in refs:
            run.submit(ref)
            summary.elapsed_s = time.perf_counter() - started
            if progress:
                progress(summary, len(refs))
        run.drain(0)
    summary.elapsed_s = time.perf_counter() - started
    if progress:
        progress(summary, len(refs))
    return summary


class Run:
    """The state of one scan: the pool (started on first use), futures in flight and in-scan duplicates."""

    def __init__(
        self, store: Store, settings: Settings, summary: ScanSummary, stack: ExitStack, fetcher: Fetcher | None
    ) -> None:
        self.store, self.settings, self.summary, self.stack, self.fetcher = store, settings, summary, stack, fetcher
        self.indexes = Indexes(settings)
        self.groups = NearDuplicates(settings.hashes.near_duplicate_distance, settings.hashes.pdq_min_quality)
        self.pool: ProcessPoolExecutor | None = None
        self.inflight: dict[Future[Analysis | LikenessError], _Pending] = {}
        self.waiting: dict[str, list[MediaRef]] = {}  # digest in flight -> further refs with the same bytes
        self.capacity = settings.scan.workers * settings.scan.queue_per_worker

    def submit(self, ref: MediaRef, data: bytes | LikenessError | None = None) -> None:
        """Analyse one media: its bytes given (crawls fetch a page's media together) or read here."""
        self.summary.files += 1
        try:
            if isinstance(data, LikenessError):
                raise data
            data = (
                data if data is not None else read_location(ref.location, self.fetcher, self.settings.media.max_bytes)
            )
        except (LikenessError, OSError) as exc:
            self._error(ref, getattr(exc, "kind", "io"), str(exc), recorded=False)
            return
        self._submit_bytes(ref, data)

    def _submit_bytes(self, ref: MediaRef, data: bytes, from_drain: bool = False) -> None:
        digest = sha256(data)
        if digest in self.waiting:
            self.waiting[digest].append(ref)
            self.summary.duplicates_in_scan += 1
            return
        with self.store.transaction() as session:
            media_id = catalogue.known(session, [digest]).get(digest)
            if media_id is not None:
                _sight(session, media_id, ref)
                self.summary.already_known += 1
                return
        if not from_drain:  # called while draining (two-pass), one more in flight is fine; draining again is not
            self.drain(self.capacity - 1)
        self.waiting[digest] = []
        self.inflight[self._pool().submit(workers.analyze, data)] = _Pending(ref, digest)

    def drain(self, keep: int) -> None:
        """Collect finished analyses until at most ``keep`` are in flight (bounded memory, steady workers)."""
        while len(self.inflight) > keep:
            done, _ = wait(self.inflight, return_when=FIRST_COMPLETED)
            for future in done:
                pending = self.inflight.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    self._broken(pending)
                    continue
                self._commit(pending, outcome)

    def _commit(self, pending: _Pending, outcome: Analysis | LikenessError) -> None:
        """One transaction per file: the media (or its error), faces, every sighting, and the new matches."""
        if isinstance(outcome, Analysis) and outcome.faces and pending.ref.upgrade_url and self._upgrade(pending):
            return
        extra = self.waiting.pop(pending.digest, [])
        if isinstance(outcome, LikenessError):
            with self.store.transaction() as session:
                self._store(session, pending, outcome, extra)
            self._error(pending.ref, outcome.kind, str(outcome), recorded=True)
            return
        with self.store.transaction() as session:
            canonical = self.groups.canonical_for(session, outcome)
            stored = self._store(session, pending, outcome, extra, canonical)
            if stored.created:
                faces, hashes = self.indexes.match(session, stored, outcome)
                self.summary.face_matches += faces
                self.summary.hash_matches += hashes
        if stored.created and canonical is None:
            self.groups.started(stored.media_id, outcome)
        self.summary.near_duplicates += stored.created and canonical is not None
        self.summary.analyzed += 1
        self.summary.faces += len(outcome.faces)
        self.summary.prefiltered += outcome.skipped is not None

    def _upgrade(self, pending: _Pending) -> bool:
        """Two-pass: the rendition shows a face, so the original is fetched and analysed in its place (and so are
        the originals of other items that had the same rendition). When the original cannot be had, the
        rendition's analysis is kept instead (False)."""
        ref, original = pending.ref, pending.ref.upgrade_url
        assert original is not None
        try:
            data = read_location(original, self.fetcher, self.settings.media.max_bytes)
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
            data = read_location(location, self.fetcher, self.settings.media.max_bytes)
        except LikenessError as exc:
            self._error(ref, exc.kind, str(exc), recorded=False)
            return
        self._submit_bytes(replace(ref, location=location, upgrade_url=None), data, from_drain=True)

    @staticmethod
    def _store(
        session: Session,
        pending: _Pending,
        outcome: Analysis | LikenessError,
        extra: list[MediaRef],
        canonical: int | None = None,
    ) -> catalogue.Ingested:
        ref = pending.ref
        stored = catalogue.ingest(session, pending.digest, ref.location, outcome, canonical, ref.page_url)
        _record_item(session, stored.media_id, ref)
        for other in extra:
            _sight(session, stored.media_id, other)
        return stored

    def _broken(self, pending: _Pending) -> None:
        """A worker died (killed, or crashed in native code): not recorded, so the next scan retries it."""
        self.waiting.pop(pending.digest, None)
        self._error(pending.ref, "worker_crashed", "the analysis worker died; retried on the next scan", recorded=False)
        self._close_pool()

    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                self.settings.scan.workers,
                mp_context=get_context("spawn"),
                initializer=workers.init,
                initargs=(self.settings,),
            )
            self.stack.callback(self._close_pool)
        return self.pool

    def _close_pool(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None

    def _error(self, ref: MediaRef, kind: str, message: str, recorded: bool) -> None:
        """A transient failure of a crawled item is recorded as failed, to be retried by the next crawl."""
        log.info("scan.file_error", location=ref.location, kind=kind, message=message)
        self.summary.errors.append(FileError(ref.location, kind, message, recorded))
        if not recorded and ref.source and ref.key:
            with self.store.transaction() as session:
                crawls.record(
                    session, ref.source, ref.key, "failed", ref.location, page_url=ref.page_url, error=message
                )


def _sight(session: Session, media_id: int, ref: MediaRef) -> None:
    catalogue.sight(session, media_id, ref.location, ref.page_url)
    _record_item(session, media_id, ref)


def _record_item(session: Session, media_id: int, ref: MediaRef) -> None:
    if ref.source and ref.key:
        crawls.record(
            session, ref.source, ref.key, "done", ref.location, media_id=media_id, page_url=ref.page_url, meta=ref.meta
        )
