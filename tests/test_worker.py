"""The task queue end to end: real worker processes on procrastinate, on the test's own database.

Workers are SIGKILLed the moment they hold a job: the stalled-job check hands their jobs back, and every file is
still catalogued exactly once. Analysis is PDQ only here (the queue is under test, not the face models)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from procrastinate.jobs import Job

from likeness.services.app import App, open_app
from likeness.settings import QueueSettings, Settings
from likeness.worker import queue
from likeness.worker.tasks import defer_scan
from tests import images
from tests.conftest import scalar

_CODE = "import sys; from likeness.cli.main import app; sys.exit(app())"
_QUEUE = {"heartbeat_s": 0.5, "stalled_after_s": 4.0, "stall_check_cron": "* * * * * *", "poll_s": 0.5,
          "retries": 1, "retry_wait_s": 0}  # fmt: skip
_PENDING = (
    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'worker.scan_file' AND status IN ('todo', 'doing')"
)
_HOLDS_JOB = (
    "SELECT 1 FROM procrastinate_jobs WHERE worker_id = %s AND status = 'doing' AND task_name = 'worker.scan_file'"
)


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    extra = {f"LIKENESS_QUEUE__{k.upper()}": str(v) for k, v in _QUEUE.items()}
    return {**cli_env, **extra, "LIKENESS_ANALYZERS": '["prefilter", "pdq"]'}


@pytest.fixture
def queue_app(settings: Settings) -> Iterator[App]:
    tuned = settings.model_copy(update={"queue": QueueSettings(**_QUEUE), "analyzers": ["prefilter", "pdq"]})
    instance = open_app(tuned)
    yield instance
    instance.close()


def _folder(root: Path, count: int) -> int:
    for i in range(count):
        images.write(root / f"d{i % 3}" / f"p{i}.jpg", images.resize(images.astronaut(), 0.3 + i * 0.02), quality=70)
    return count


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CODE, *args], env=env, capture_output=True, text=True, timeout=120)


def _worker(env: dict[str, str], db: psycopg.Connection, concurrency: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    """A worker in a process group of its own (its analysis process is killed with it), and its procrastinate
    worker id (the row it registers: workers are started one at a time)."""
    before = db.execute("SELECT coalesce(max(id), 0) FROM procrastinate_workers").fetchone()[0]  # type: ignore[index]
    args = [sys.executable, "-c", _CODE, "worker", "--concurrency", str(concurrency)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (new := _new_worker(db, before)):
        assert proc.poll() is None, "the worker stopped before taking jobs"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return proc, new[0]


def _new_worker(db: psycopg.Connection, before: int) -> list[int]:
    return [row[0] for row in db.execute("SELECT id FROM procrastinate_workers WHERE id > %s", (before,))]


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for proc in workers:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _until(done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the workers did not get there in time"
        time.sleep(0.1)


def _kill_in_jobs(
    env: dict[str, str], db: psycopg.Connection, workers: list[tuple[subprocess.Popen[bytes], int]], kills: int
) -> int:
    """``kills`` times (or until the queue is empty): SIGKILL a random worker the moment it holds a job, and
    start a new one in its place. The kills that happened."""
    rng, done, deadline = random.Random(11), 0, time.monotonic() + 90
    while done < kills:
        victim = rng.randrange(len(workers))
        if not _holds_job(db, workers[victim][1], deadline):
            break
        _stop([workers[victim][0]])
        workers[victim] = _worker(env, db)
        done += 1
    return done


def _holds_job(db: psycopg.Connection, worker_id: int, deadline: float) -> bool:
    """Wait until that worker is running a job: True; False when the queue is done first (or time is up)."""
    while not db.execute(_HOLDS_JOB, (worker_id,)).fetchone():
        if not _pending(db) or time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _pending(db: psycopg.Connection) -> int:
    return int(db.execute(_PENDING).fetchone()[0])  # type: ignore[index]


@pytest.fixture
def db(settings: Settings) -> Iterator[psycopg.Connection]:
    """The test's database, polled through one connection (autocommit: every read sees the latest commits)."""
    url = str(settings.database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def _count(db: psycopg.Connection, sql: str) -> int:
    return int(db.execute(sql).fetchone()[0])  # type: ignore[index]


def test_two_workers_catalogue_a_folder_once_through_sigkills(env: dict[str, str], db: psycopg.Connection,
                                                              tmp_path: Path) -> None:  # fmt: skip
    files = _folder(tmp_path / "scan", 160)
    queued = _cli(env, "scan", "--queue", "--json", str(tmp_path / "scan"))
    assert queued.returncode == 0, queued.stderr
    assert json.loads(queued.stdout)["queued"] == files
    workers = [_worker(env, db, concurrency=2)]  # two jobs at once, each with its own analysis process
    workers.append(_worker(env, db))
    try:
        kills = _kill_in_jobs(env, db, workers, kills=10)  # the ten
        _until(lambda: _pending(db) == 0, 120)
    finally:
        _stop([proc for proc, _ in workers])
    assert kills >= 8
    # each kill left a job ``doing``, handed back by the stalled-job check (one may have finished as it was killed)
    assert _count(db, "SELECT count(*) FROM procrastinate_events WHERE type = 'deferred_for_retry'") >= kills - 1
    assert _count(db, "SELECT count(*) FROM media") == files
    assert _count(db, "SELECT count(*) FROM sightings") == files
    not_done = "SELECT count(*) FROM procrastinate_jobs WHERE status <> 'succeeded' AND task_name = 'worker.scan_file'"
    assert _count(db, not_done) == 0


def test_a_periodic_job_runs_once_per_slot_with_two_workers(env: dict[str, str], db: psycopg.Connection) -> None:
    """The stalled-job check is deferred every second by each worker's periodic deferrer: one job per second."""
    checks = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'worker.retry_stalled_jobs'"
    workers = [_worker(env, db)]
    workers.append(_worker(env, db))
    try:
        _until(lambda: _count(db, checks) >= 4, 60)
    finally:
        _stop([proc for proc, _ in workers])
    slots = checks.replace("count(*)", "count(DISTINCT args->>'timestamp')")
    assert _count(db, slots) == _count(db, checks)


def test_a_failing_job_ends_failed_with_its_error_and_retry_requeues_it(queue_app: App, env: dict[str, str],
                                                                        tmp_path: Path) -> None:  # fmt: skip
    path = images.write(tmp_path / "gone.jpg", images.astronaut())
    (job_id,) = defer_scan(queue_app, [str(path)], actor="test").job_ids
    data = path.read_bytes()
    path.unlink()  # queued, then gone before a worker reads it: every attempt fails
    queue.run(queue_app, ["analysis"], wait=False)

    listed = _cli(env, "jobs", "list", "--status", "failed", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (failed,) = [job for job in json.loads(listed.stdout) if job["task"] == "worker.scan_file"]
    assert (failed["id"], failed["attempts"]) == (job_id, _QUEUE["retries"] + 1)  # the first run and its retry
    assert failed["error"].startswith("unreadable: ")

    path.write_bytes(data)
    retried = _cli(env, "jobs", "retry", str(job_id))
    assert retried.returncode == 0, retried.stderr
    queue.run(queue_app, ["analysis"], wait=False)
    url = str(queue_app.settings.database_url)
    assert scalar(url, f"SELECT count(*) FROM procrastinate_jobs WHERE id = {job_id} AND status = 'succeeded'") == 1
    assert scalar(url, "SELECT count(*) FROM media") == 1
    assert _cli(env, "jobs", "retry", str(job_id)).returncode == 1  # only failed jobs are retried

    assert scalar(url, "SELECT count(*) FROM job_errors") == 1  # the failed attempts' error, kept
    _prune(queue_app.settings.model_copy(update={"queue": QueueSettings(keep_succeeded_h=0)}), queue_app)
    assert scalar(url, f"SELECT count(*) FROM procrastinate_jobs WHERE id = {job_id}") == 0
    assert scalar(url, "SELECT count(*) FROM job_errors") == 0


def _prune(settings: Settings, app: App) -> None:
    """The hourly clean-up, run now: succeeded jobs (and their errors) go."""
    jobs = queue.make_queue(settings, app.store)

    async def prune() -> None:
        async with jobs.open_async():
            await jobs.tasks["worker.prune_old_jobs"].func(timestamp=0)

    asyncio.run(prune())


def test_retries_back_off_exponentially_then_stop(app: App) -> None:
    """The queue's tasks carry the settings' policy: waits of 2, 4, 8, 16 s, then no retry (the job fails)."""
    strategy = queue.make_queue(app.settings, app.store).tasks["worker.scan_file"].retry_strategy
    assert strategy is not None
    waits = []
    for attempts in range(app.settings.queue.retries + 1):
        job = Job(
            id=1, queue="analysis", lock=None, queueing_lock=None, task_name="worker.scan_file", attempts=attempts
        )
        decision = strategy.get_retry_decision(exception=ValueError("boom"), job=job)
        waits.append(None if decision is None else round((decision.retry_at - datetime.now(UTC)).total_seconds()))
    assert waits == [2, 4, 8, 16, None]


def test_worker_refuses_unknown_queues_and_concurrency() -> None:
    from typer.testing import CliRunner

    from likeness.cli.main import app

    for args in (["--queue", "nope"], ["--concurrency", "0"]):
        result = CliRunner().invoke(app, ["worker", *args])
        assert result.exit_code == 2, result.output
