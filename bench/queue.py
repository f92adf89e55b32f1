"""The task queue (procrastinate on the embedded PostgreSQL) against the in-process scan, on this machine's cores.

    python -m bench.queue [--files N] [--tasks N] [--latency N] [--no-write]

1. Overhead: the same folder through `likeness scan FOLDER` (the in-process pool, 2 analysis processes) and
   through `likeness scan --queue FOLDER` with 2 `likeness worker` processes started at the same moment, until no
   scan job is left; wall time of each from a fresh LIKENESS_HOME (the bench process keeps the embedded server up,
   so neither side pays for starting it; both pay for their processes and their models). Pictures: eval-data's
   faces and distractors, else the package pictures (astronaut, Grace Hopper) at distinct sizes.
2. Trivial tasks: a no-op task (defined here, run by 2 worker processes of this module) deferred in one
   transaction; tasks/s from the first start to the last success, in the queue's own event log.
3. Defer-to-start latency: one job at a time to idle workers (LISTEN/NOTIFY wakes them); the queue's event log
   gives the deferral and start times, both on the database's clock.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil
import psycopg

from bench.common import EVAL, ROOT, distractors, identities, table, write_section
from likeness.settings import Settings
from likeness.store import Store, open_store
from likeness.worker.queue import conninfo, defer, make_queue

WORKERS = 2
_logs: dict[int, IO[bytes]] = {}  # each started process's stderr, by pid
NOOP, BENCH_QUEUE = "bench.noop", "bench"
_PENDING = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status IN ('todo', 'doing')"
_FAILED = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'failed'"
_CLIENTS = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
_SPAN = (
    "SELECT extract(epoch FROM max(e.at) FILTER (WHERE e.type = 'succeeded') - min(e.at) FILTER (WHERE e.type = "
    "'started')) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id WHERE j.id = ANY(%s)"
)
_WRITES = (
    "SELECT (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables), "
    "pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
)
_LATENCY = (
    "SELECT extract(epoch FROM s.at - d.at) FROM procrastinate_events d JOIN procrastinate_events s "
    "ON s.job_id = d.job_id AND s.type = 'started' WHERE d.type = 'deferred' AND d.job_id = ANY(%s)"
)


@dataclass
class Run:
    label: str
    wall_s: float
    media: int
    failed: int = 0
    rss_mib: float = 0.0
    connections: float = 0.0  # peak database connections per worker process, above the bench's own
    rows: float = 0.0  # rows written (inserted, updated, deleted) per file, every table
    wal_kib: float = 0.0  # write-ahead log per file


# --- the folder --------------------------------------------------------------------------------------------------


def pictures(folder: Path, count: int) -> str:
    """``count`` pictures in ``folder``; where they came from."""
    folder.mkdir(parents=True)
    if (EVAL / "faces").is_dir():
        every = sorted(p for paths in identities().values() for p in paths) + distractors()
        step = max(1, len(every) // count)
        for i, path in enumerate(every[::step][:count]):
            shutil.copyfile(path, folder / f"{i:04d}{path.suffix.lower()}")
        return f"eval-data faces and distractors ({min(count, len(every[::step]))} of {len(every)})"
    from PIL import Image
    from skimage import data

    from likeness.services.corpus import GRACE_HOPPER

    sources = [Image.fromarray(data.astronaut()), Image.open(GRACE_HOPPER).convert("RGB")]
    for i in range(count):  # distinct sizes: distinct bytes, so every file is analysed
        picture = sources[i % 2].copy()
        picture.thumbnail((160 + 2 * i, 160 + 2 * i))
        picture.save(folder / f"{i:04d}.jpg", "JPEG", quality=90)
    return f"astronaut and Grace Hopper at {count} distinct sizes (no eval data)"


# --- a fresh home, its server held by this process ----------------------------------------------------------------


@contextmanager
def fresh_home() -> Iterator[tuple[dict[str, str], Store, psycopg.Connection]]:
    """A new LIKENESS_HOME with its schema made; the environment for commands in it, the bench's store and an
    autocommit connection (every poll sees the latest commits)."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "LIKENESS_HOME": str(home), "LIKENESS_SCAN__WORKERS": str(WORKERS)}
        env.pop("LIKENESS_DATABASE_URL", None)
        store = open_store(Settings(home=home, database_url=None))
        store.engine.dispose()  # the migrations' connection gone: its statistics flushed before any count starts
        try:
            with psycopg.connect(conninfo(store), autocommit=True) as db:
                yield env, store, db
        finally:
            store.close()


def _one(db: psycopg.Connection, sql: str, *params: object) -> float:
    row = db.execute(sql, params or None).fetchone()
    assert row is not None
    return float(row[0] or 0)


def cli() -> str:
    return shutil.which("likeness") or str(Path(sys.executable).with_name("likeness"))


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A process in a group of its own (its analysis processes are stopped with it); its stderr in a file, which
    a pipe nobody reads would not be (a full pipe blocks the process)."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _check or at exit, once the process is done)
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    _logs[proc.pid] = log
    return proc


def alive(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is not None:
            _check(proc, expected=None)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (a worker finishes the job at hand), then SIGKILL after 30 s."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mib(procs: list[subprocess.Popen[bytes]]) -> float:
    """Resident memory of these processes and their children, summed (shared pages counted in each)."""
    total = 0
    for proc in procs:
        try:
            root = psutil.Process(proc.pid)
            total += sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def watch(done: Callable[[], bool], sample: Callable[[], None], limit_s: float = 1800) -> None:
    deadline = time.monotonic() + limit_s
    while not done():
        sample()
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the queue")
        time.sleep(0.05)


# --- 1. overhead ---------------------------------------------------------------------------------------------------


def writes(db: psycopg.Connection) -> tuple[float, float]:
    """(rows written, WAL bytes) so far. Backends report their statistics when they end: read after the runs'
    processes have stopped, and a moment later."""
    time.sleep(1.0)
    row = db.execute(_WRITES).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def per_file(run: Run, before: tuple[float, float], after: tuple[float, float], files: int) -> Run:
    run.rows, run.wal_kib = (after[0] - before[0]) / files, (after[1] - before[1]) / 1024 / files
    return run


def in_process(folder: Path, files: int) -> Run:
    with fresh_home() as (env, _, db):
        before, peak = writes(db), [0.0]
        started = time.perf_counter()
        proc = start([cli(), "scan", str(folder)], env)
        watch(lambda: proc.poll() is not None, lambda: peak.__setitem__(0, max(peak[0], rss_mib([proc]))))
        wall = time.perf_counter() - started
        _check(proc)
        media = int(_one(db, "SELECT count(*) FROM media"))
        run = Run(f"`likeness scan` ({WORKERS} analysis processes)", wall, media, rss_mib=peak[0])
        return per_file(run, before, writes(db), files)


def queued(folder: Path, files: int, concurrency: int) -> Run:
    """``scan --queue`` and the workers started together; done when no scan job is left."""
    task = "worker.scan_file"
    with fresh_home() as (env, _, db):
        baseline, before = _one(db, _CLIENTS), writes(db)
        peak = {"rss": 0.0, "conn": 0.0}

        def sample() -> None:
            alive(workers)
            peak["rss"] = max(peak["rss"], rss_mib(workers))
            peak["conn"] = max(peak["conn"], _one(db, _CLIENTS) - baseline)

        started = time.perf_counter()
        workers = [start([cli(), "worker", "--concurrency", str(concurrency)], env) for _ in range(WORKERS)]
        try:
            subprocess.run([cli(), "scan", "--queue", str(folder)], env=env, cwd=ROOT, check=True, capture_output=True)
            watch(lambda: _one(db, _PENDING, task) == 0, sample)
            wall = time.perf_counter() - started
        finally:
            stop(workers)
        label = f"`scan --queue` + {WORKERS} `likeness worker --concurrency {concurrency}`"
        media, failed = int(_one(db, "SELECT count(*) FROM media")), int(_one(db, _FAILED, task))
        run = Run(label, wall, media, failed, peak["rss"], peak["conn"] / WORKERS)
        return per_file(run, before, writes(db), files)


def _check(proc: subprocess.Popen[bytes], expected: int | None = 0) -> None:
    """Stop the bench when a command failed (or a worker stopped: ``expected`` None), with its stderr's end."""
    if proc.returncode != expected:
        log = _logs[proc.pid]
        log.seek(0)
        tail = log.read().decode(errors="replace")[-2000:]
        raise SystemExit(f"{proc.args!r} exited {proc.returncode}: {tail}")


# --- 2 and 3. trivial tasks, latency -------------------------------------------------------------------------------


def noop() -> None:
    """The trivial task: what the queue costs a job, with nothing of the job's own."""


def noop_worker(concurrency: int) -> None:
    """`python -m bench.queue --noop-worker C`: the likeness queue (every blueprint, its settings) plus the no-op
    task, taking only the bench's queue."""
    settings = Settings()
    store = open_store(settings)
    queue = make_queue(settings, store)
    queue.task(name=NOOP, queue=BENCH_QUEUE)(noop)
    try:
        queue.run_worker(queues=[BENCH_QUEUE], concurrency=concurrency, wait=True,
                         update_heartbeat_interval=settings.queue.heartbeat_s,
                         fetch_job_polling_interval=settings.queue.poll_s)  # fmt: skip
    finally:
        store.close()


@contextmanager
def noop_workers(env: dict[str, str], db: psycopg.Connection, concurrency: int) -> Iterator[None]:
    before = _one(db, "SELECT count(*) FROM procrastinate_workers")
    args = [sys.executable, "-m", "bench.queue", "--noop-worker", str(concurrency)]
    workers = [start(args, env) for _ in range(WORKERS)]
    try:
        registered = "SELECT count(*) FROM procrastinate_workers"
        watch(lambda: _one(db, registered) >= before + WORKERS, lambda: alive(workers), 120)
        yield
    finally:
        stop(workers)


def throughput(store: Store, db: psycopg.Connection, tasks: int) -> tuple[float, float]:
    """(tasks/s run, jobs/s deferred in one transaction)."""
    started = time.perf_counter()
    with store.transaction() as session:
        ids = [defer(session, NOOP, BENCH_QUEUE, {}) for _ in range(tasks)]
    deferred = time.perf_counter() - started
    watch(lambda: _one(db, _PENDING, NOOP) == 0, lambda: None)
    return tasks / _one(db, _SPAN, ids), tasks / deferred


def latency(store: Store, db: psycopg.Connection, jobs: int) -> list[float]:
    """Milliseconds from deferral to start, one job at a time, the workers idle in between."""
    ids = []
    for _ in range(jobs):
        time.sleep(0.2)  # idle: waiting on LISTEN, not in a fetch
        with store.transaction() as session:
            ids.append(defer(session, NOOP, BENCH_QUEUE, {}))
        watch(lambda: _one(db, _PENDING, NOOP) == 0, lambda: None, 60)
    return sorted(1000 * float(row[0]) for row in db.execute(_LATENCY, (ids,)))


def trivial(tasks: int, jobs: int) -> tuple[list[list[object]], list[float], int]:
    rows: list[list[object]] = []
    waits: list[float] = []
    with fresh_home() as (env, store, db):
        max_connections = int(_one(db, "SELECT setting::int FROM pg_settings WHERE name = 'max_connections'"))
        for concurrency in (1, 4):
            with noop_workers(env, db, concurrency):
                run, deferred = throughput(store, db, tasks)
                rows.append([f"{WORKERS} x concurrency {concurrency}", tasks, f"{run:.0f}", f"{deferred:.0f}"])
                print(rows[-1], flush=True)
                if concurrency == 1:
                    waits = latency(store, db, jobs)
    return rows, waits, max_connections


# --- the report ----------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main(argv: list[str]) -> None:
    options = {"--files": 400, "--tasks": 2000, "--latency": 50}
    for i, arg in enumerate(argv):
        if arg in options:
            options[arg] = int(argv[i + 1])
    with tempfile.TemporaryDirectory() as tmp:
        source = pictures(Path(tmp) / "in", options["--files"])
        files = len(list((Path(tmp) / "in").iterdir()))
        runs = [in_process(Path(tmp) / "in", files)]
        print(runs[-1], flush=True)
        for concurrency in (1, 2):
            runs.append(queued(Path(tmp) / "in", files, concurrency))
            print(runs[-1], flush=True)
    rows, waits, max_connections = trivial(options["--tasks"], options["--latency"])
    print(f"latency ms: median {statistics.median(waits):.1f}, p95 {percentile(waits, 0.95):.1f}", flush=True)
    if "--no-write" not in argv:
        write(source, files, runs, rows, waits, max_connections)


OVERHEAD = ["run", "media", "failed jobs", "wall s", "files/s", "vs in-process", "peak RSS MiB", "connections"]
OVERHEAD += ["rows written / file", "WAL KiB / file"]


def write(source: str, files: int, runs: list[Run], rows: list[list[object]], waits: list[float],
          max_connections: int) -> None:  # fmt: skip
    base = runs[0].wall_s
    overhead = [
        [r.label, f"{r.media} / {files}", r.failed, f"{r.wall_s:.1f}", f"{files / r.wall_s:.1f}",
         f"{100 * (r.wall_s / base - 1):+.0f}%" if r is not runs[0] else "-", f"{r.rss_mib:,.0f}",
         f"{r.connections:.1f}" if r is not runs[0] else "-", f"{r.rows:.0f}", f"{r.wal_kib:.0f}"]
        for r in runs
    ]  # fmt: skip
    lat = [[len(waits), f"{statistics.median(waits):.1f}", f"{percentile(waits, 0.95):.1f}", f"{max(waits):.1f}"]]
    write_section(
        "queue",
        "Task queue (procrastinate) against the in-process scan",
        f"""
Pictures: {source}. Each run starts from a fresh LIKENESS_HOME whose embedded server the bench holds (neither side
pays for starting it); the wall time runs from the first command to the last file catalogued, model loading and
process start-up included. The in-process scan batches {Settings().scan.batch_files} files per call to its
{WORKERS} analysis processes; a queue job is one file, analysed in its worker thread's own analysis process, then
committed and matched in the worker. Goal: the queue at most 10% slower. "Connections" is the peak number of
database connections each worker process held, measured in `pg_stat_activity`; RSS sums the worker processes and
their analysis processes (shared pages counted in each). Rows written (every table, procrastinate's included) and
write-ahead log per file come from PostgreSQL's statistics: what one more machine adds to the shared database.

{table(OVERHEAD, overhead)}

Trivial tasks: a no-op task run by {WORKERS} worker processes of the likeness queue (every blueprint, its settings),
jobs deferred in one transaction; tasks/s from the first start to the last success in procrastinate's event log,
and the rate of deferring them (one SQL call each, `likeness.worker.queue.defer`).

{table(["workers", "tasks", "tasks/s", "deferred jobs/s (one transaction)"], rows)}

Defer-to-start latency of one job, the {WORKERS} workers idle (concurrency 1; woken by LISTEN/NOTIFY, polling every
{Settings().queue.poll_s:g} s only as a fallback), deferral and start times on the database's clock, milliseconds:

{table(["jobs", "median ms", "p95 ms", "max ms"], lat)}

The embedded server allows `max_connections` = {max_connections}. How this extends to many machines sharing one
PostgreSQL: docs/scaling.md.
""",
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--noop-worker"]:
        noop_worker(int(sys.argv[2]))
    else:
        main(sys.argv[1:])
