"""Analysis worker processes, each analysing under a per-file budget watched from outside.

The analysing code cannot be trusted to stop itself: a hostile file may spin a decoder for minutes or allocate
gigabytes inside a C library. So each worker is a process of its own, and this side of the pipe watches it: the
worker says which file it has started (``Pipeline.analyze_many``'s ``started`` callback), and a worker whose
current file runs past ``scan.file_seconds`` or whose memory passes ``scan.file_memory_mib`` is killed. That file
is recorded as ``too_costly``, the other files it held are queued again, and a fresh worker takes its place. A
worker that dies by itself (a native crash) costs its file one retry alone; a second death on the same file is
recorded against it. Workers die with the process that started them (``PR_SET_PDEATHSIG``, and end of file on
their pipe), so a killed scan leaves none behind.

Small files go to a worker a few at a time, so their faces share one pass through the embedding network.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

import psutil

from likeness.analyze import Analysis
from likeness.errors import AnalysisFailed, ConfigurationError, LikenessError, TooCostly
from likeness.settings import Settings

Outcome = Analysis | LikenessError
_PR_SET_PDEATHSIG = 1
_POLL_S = 0.05


@dataclass
class _Job:
    keys: list[Hashable]
    datas: list[bytes]
    active: int | None = None  # the file the worker said it is on; -1: the batched part after every file
    deadline: float = 0.0


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    job: _Job | None = None


@dataclass
class _Pending:
    key: Hashable
    data: bytes
    crashes: int = 0


@dataclass
class AnalysisPool:
    """``submit`` files by key; ``collect`` returns finished (key, Analysis or error) pairs as they come."""

    settings: Settings
    workers: int
    queue: deque[_Pending] = field(default_factory=deque)
    crashes: dict[Hashable, int] = field(default_factory=dict)
    done: list[tuple[Hashable, Outcome]] = field(default_factory=list)
    _workers: list[_Worker] = field(default_factory=list)

    def submit(self, key: Hashable, data: bytes) -> None:
        self.queue.append(_Pending(key, data))
        self._dispatch()

    @property
    def in_flight(self) -> int:
        return len(self.queue) + sum(len(w.job.keys) for w in self._workers if w.job)

    def collect(self, timeout: float | None = None) -> list[tuple[Hashable, Outcome]]:
        """Wait until something finished (or ``timeout`` passed), watching budgets meanwhile."""
        until = None if timeout is None else time.monotonic() + timeout
        while not self.done and self.in_flight:
            self._step()
            if until is not None and time.monotonic() >= until:
                break
        done, self.done = self.done, []
        return done

    def close(self) -> None:
        for worker in self._workers:
            _stop(worker)
        self._workers = []

    def __enter__(self) -> AnalysisPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the loop ---------------------------------------------------------------------------------------------

    def _step(self) -> None:
        self._dispatch()
        conns = {w.conn: w for w in self._workers}
        for conn in wait(list(conns), timeout=_POLL_S):
            self._receive(conns[conn])  # type: ignore[index]
        self._watch()

    def _dispatch(self) -> None:
        while len(self._workers) < self.workers:
            self._workers.append(_start(self.settings))
        for worker in self._workers:
            if worker.ready and worker.job is None and self.queue:
                worker.job = self._next_job()
                worker.job.deadline = time.monotonic() + self.settings.scan.file_seconds
                worker.conn.send(worker.job.datas)

    def _next_job(self) -> _Job:
        """One file, or several small ones (their faces then share a pass through the network)."""
        limits = self.settings.scan
        first = self.queue.popleft()
        job = _Job([first.key], [first.data])
        small = limits.batch_max_bytes
        while (
            self.queue
            and len(job.keys) < limits.batch_files
            and len(first.data) <= small
            and len(self.queue[0].data) <= small
        ):
            more = self.queue.popleft()
            job.keys.append(more.key)
            job.datas.append(more.data)
        return job

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            if not worker.ready:
                raise ConfigurationError(f"an analysis worker died starting (exit code {_exit(worker)})") from None
            self._died(worker, f"the analysis process died (exit code {_exit(worker)})")
            return
        kind, value = message
        if kind == "init_failed":
            raise ConfigurationError(f"the analysis workers cannot start: {value}")
        if kind == "ready":
            worker.ready = True
        elif kind == "started":
            self._started(worker, int(value))
        elif kind == "done":
            assert worker.job is not None
            self.done += zip(worker.job.keys, value, strict=True)
            worker.job = None
        elif kind == "memory":  # MemoryError inside: the address-space backstop was hit
            self._over_budget(worker, f"memory over the {self.settings.scan.file_memory_mib} MiB budget")

    def _started(self, worker: _Worker, index: int) -> None:
        """Each file of a batch gets a budget of its own; a lone file's clock runs from dispatch."""
        job = worker.job
        assert job is not None
        if len(job.keys) > 1:
            job.deadline = time.monotonic() + self.settings.scan.file_seconds
        job.active = index

    def _watch(self) -> None:
        limits = self.settings.scan
        for worker in list(self._workers):
            if worker.job is None:
                continue
            if time.monotonic() > worker.job.deadline:
                self._over_budget(worker, f"analysis took over the {limits.file_seconds:g} s budget")
            elif _rss_mib(worker.process) > limits.file_memory_mib:
                self._over_budget(worker, f"memory over the {limits.file_memory_mib} MiB budget")

    # -- failures ---------------------------------------------------------------------------------------------

    def _over_budget(self, worker: _Worker, why: str) -> None:
        """The file being analysed is too costly; the rest of its job goes back to the queue, alone."""
        job = self._replace(worker)
        assert job is not None
        culprit = job.active if job.active is not None and job.active >= 0 else None
        if culprit is None and len(job.keys) == 1:
            culprit = 0
        for n, (key, data) in enumerate(zip(job.keys, job.datas, strict=True)):
            if n == culprit:
                self.done.append((key, TooCostly(f"{why}; the worker was stopped and replaced")))
            else:
                self.queue.appendleft(_Pending(key, data))

    def _died(self, worker: _Worker, why: str) -> None:
        """A worker died by itself: its file is retried alone once, then recorded; the others are requeued."""
        job = self._replace(worker)
        if job is None:
            return
        for n, (key, data) in enumerate(zip(job.keys, job.datas, strict=True)):
            suspect = n == job.active or len(job.keys) == 1
            if suspect and self.crashes.get(key, 0) >= 1 and len(job.keys) == 1:
                self.done.append((key, AnalysisFailed(f"{why}, twice on this file")))
                continue
            if suspect:
                self.crashes[key] = self.crashes.get(key, 0) + 1
            self.queue.appendleft(_Pending(key, data))

    def _replace(self, worker: _Worker) -> _Job | None:
        job = worker.job
        _stop(worker, kill=True)
        self._workers.remove(worker)
        self._workers.append(_start(self.settings))
        return job


def _exit(worker: _Worker) -> int | None:
    worker.process.join(timeout=1)
    return worker.process.exitcode


def _rss_mib(process: BaseProcess) -> float:
    try:
        return float(psutil.Process(process.pid).memory_info().rss) / 2**20
    except (psutil.NoSuchProcess, ValueError):
        return 0.0


def _start(settings: Settings) -> _Worker:
    ctx = get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=serve, args=(theirs, settings), daemon=True, name="likeness-analysis")
    process.start()
    theirs.close()
    return _Worker(process, ours)


def _stop(worker: _Worker, kill: bool = False) -> None:
    if kill and worker.process.is_alive():
        worker.process.kill()
    else:
        with contextlib.suppress(OSError, ValueError):
            worker.conn.send(None)
    worker.process.join(timeout=5)
    if worker.process.is_alive():
        worker.process.kill()
        worker.process.join()
    worker.conn.close()


# -- the worker side ------------------------------------------------------------------------------------------


def serve(conn: Connection, settings: Settings) -> None:
    """A worker: models loaded once, then jobs (lists of file bytes) until told to stop or the pipe closes."""
    _die_with_parent()
    from likeness.services import workers

    try:
        workers.init(settings)
    except Exception as exc:  # a model that will not load fails every file alike: say so once, and stop
        conn.send(("init_failed", f"{exc.__class__.__name__}: {exc}"))
        return
    _limit_address_space(settings.scan.file_memory_mib)
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            results = workers.analyze_many(job, lambda i: conn.send(("started", i)))
        except MemoryError:
            conn.send(("memory", None))
            return
        conn.send(("done", results))


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that started it dies, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the closed pipe still ends the worker between files
        return
    if os.getppid() == 1:  # the parent died before the call above
        os._exit(1)


def _limit_address_space(budget_mib: int) -> None:
    """A backstop behind the watchdog: an allocation far past the budget fails at once (MemoryError) instead of
    growing faster than the watchdog polls. Address space, not resident memory: set with room for the models,
    libraries and thread stacks already mapped."""
    mapped = psutil.Process().memory_info().vms
    limit = mapped + 2 * budget_mib * 2**20
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
