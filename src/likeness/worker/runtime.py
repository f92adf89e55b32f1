"""What a worker process keeps between jobs: the app (store, settings, indexes), one analysis process per job
thread (services/pool.py, so each file still runs under its budget, watched from outside) and the near-duplicate
groups it has seen."""

from __future__ import annotations

import threading

from likeness.analyze import Analysis
from likeness.catalogue.near_duplicates import NearDuplicates
from likeness.errors import ConfigurationError, LikenessError
from likeness.services.app import App
from likeness.services.pool import AnalysisPool

_app: App | None = None
_groups: NearDuplicates | None = None
_local = threading.local()
# Jobs of one process share its indexes and near-duplicate groups, built for one thread at a time: a job holds
# this lock around its store-and-match steps (its analysis, the costly part, runs outside it).
committing = threading.Lock()
_pools: list[AnalysisPool] = []  # every thread's, to stop them when the worker stops


def install(app: App) -> None:
    """Called once by the worker command before it starts taking jobs."""
    global _app, _groups
    _app = app
    _groups = NearDuplicates(app.settings.hashes.near_duplicate_distance, app.settings.hashes.pdq_min_quality)


def current() -> App:
    if _app is None:
        raise ConfigurationError("no app in this process: tasks run under `likeness worker`")
    return _app


def groups() -> NearDuplicates:
    assert _groups is not None, "install() first"
    return _groups


def analyse(data: bytes) -> Analysis | LikenessError:
    """One file through this thread's own analysis process (started on first use, kept for the next job)."""
    pool: AnalysisPool | None = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = AnalysisPool(current().settings, 1)
        _pools.append(pool)
    pool.submit("file", data)
    while not (done := pool.collect()):
        pass
    return done[0][1]


def close() -> None:
    """The analysis processes stopped (they would die with this process anyway)."""
    while _pools:
        _pools.pop().close()
