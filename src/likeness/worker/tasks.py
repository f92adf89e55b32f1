"""The pipeline's steps as queue jobs: ``worker.scan_file`` (analysis: read, analyse, commit and match one file).
Crawls and re-searches are the scheduler's jobs (likeness/schedule/tasks.py), alerts' sends theirs.

Each job is the in-process scan's own steps (services/tasks.py) over one path or URL, so it is idempotent:
known bytes are only sighted again (the same place is one sighting), the same bytes are one media whichever
worker commits first, the same face/subject pair one match. A worker killed at any point loses at most the
uncommitted work of its jobs, which the stalled-job check queues again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import procrastinate

from likeness.analyze import Analysis, sha256
from likeness.errors import LikenessError
from likeness.fetch import Fetcher
from likeness.services import tasks
from likeness.services.app import App
from likeness.settings import Settings
from likeness.sources import MediaRef, Refused, discover
from likeness.worker import runtime
from likeness.worker.jobs import recorded
from likeness.worker.queue import ANALYSIS, defer

blueprint = procrastinate.Blueprint()

SCAN_FILE = "worker.scan_file"


def file_args(ref: MediaRef, actor: str) -> dict[str, Any]:
    """A scan job's arguments: the ref's readable location and, for a local file, its exact path bytes."""
    raw = ref.raw_path.hex() if ref.raw_path is not None else None
    return {"location": ref.location, "raw_path": raw, "actor": actor}


@blueprint.task(name=SCAN_FILE, queue=ANALYSIS, pass_context=True)
@recorded
def scan_file(location: str, raw_path: str | None, actor: str) -> int:
    """Read, skip known bytes, analyse, commit and match one file or URL; the media id. A file that cannot be
    read raises (the job is retried, then fails with why); one that cannot be analysed is stored as its error."""
    app = runtime.current()
    ref = MediaRef(location, raw_path=bytes.fromhex(raw_path) if raw_path is not None else None)
    data = _read(app.settings, ref)
    digest = sha256(data)
    with runtime.committing:
        known = tasks.sight_known(app.store, ref, digest, app.indexes(), actor=actor)
    if known is not None:
        return known
    outcome = runtime.analyse(data)
    with runtime.committing:
        return _commit(app, ref, digest, outcome, actor)


def _commit(app: App, ref: MediaRef, digest: str, outcome: Analysis | LikenessError, actor: str) -> int:
    groups = runtime.groups()
    stored = tasks.commit_analysis(app.store, ref, digest, outcome, app.indexes(), actor=actor, groups=groups)
    if stored.created and stored.canonical_id is None and isinstance(outcome, Analysis):
        groups.started(stored.media_id, outcome)
    return stored.media_id


def _read(settings: Settings, ref: MediaRef) -> bytes:
    if not ref.is_url:
        return tasks.read(ref, settings, None)
    with Fetcher(settings.fetch, settings.media.max_bytes) as fetcher:
        return tasks.read(ref, settings, fetcher)


def defer_scan(app: App, targets: list[str], *, actor: str) -> Deferred:
    """``likeness scan --queue``: one ``worker.scan_file`` job per file (or URL) found, all in one transaction,
    for workers to run. Files in folders whose content is not media are left out, as the in-process scan does."""
    from likeness.services.scan import _looks_like_media  # the in-process scan's own test, not a copy

    result = Deferred()
    with app.store.transaction() as session:
        for ref in discover(targets):
            if isinstance(ref, Refused):
                result.refused.append((ref.location, str(ref.error)))
            elif ref.in_folder and not _looks_like_media(ref):
                result.not_media += 1
            else:
                result.job_ids.append(defer(session, SCAN_FILE, ANALYSIS, file_args(ref, actor)))
    return result


@dataclass
class Deferred:
    job_ids: list[int] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (location, why): not queued
    not_media: int = 0
