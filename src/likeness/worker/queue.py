"""The procrastinate App on the store's database, jobs deferred inside the data's own transaction, and the
worker loop with its stalled-job check.

Deferring is one SQL call to procrastinate's own ``procrastinate_defer_jobs_v1`` on the caller's SQLAlchemy
session: the job exists exactly when the rows that asked for it were committed. A worker killed mid-job leaves
the job ``doing``; its heartbeat stops, and the periodic check (on every worker, deferred once per slot whatever
the number of workers) hands the job back to the queue.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import procrastinate
from sqlalchemy import text
from sqlalchemy.orm import Session

from likeness.log import get_logger
from likeness.services.app import App
from likeness.settings import QueueSettings, Settings
from likeness.store import Store

log = get_logger(__name__)

ANALYSIS, IO, MATCH, MAINTENANCE = "analysis", "io", "match", "maintenance"
QUEUES = (ANALYSIS, IO, MATCH)
# Task modules of other parts, added when present: each exposes a procrastinate.Blueprint named ``blueprint``.
BLUEPRINTS = ("likeness.worker.tasks", "likeness.alerts.tasks", "likeness.schedule.tasks")

# Blueprint tasks are module-level objects shared by every App built in this process: their declared retry
# policies are kept here, so that a second make_queue (other settings) does not inherit the first one's.
_DECLARED: dict[str, procrastinate.BaseRetryStrategy | None] = {}
_PRUNE_ERRORS = "DELETE FROM job_errors e WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = e.job_id)"
_DEFER = text(
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, NULL, NULL, "
    "CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1]))"
)


def make_queue(settings: Settings, store: Store) -> procrastinate.App:
    """Every task module's blueprint, the stalled-job check, and the retry policy of the settings."""
    queue = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(store)))
    for name in BLUEPRINTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise  # the module exists but something it imports does not: a real error
            continue
        queue.add_tasks_from(module.blueprint, namespace="")
    _add_stall_check(queue, settings.queue)
    _add_pruning(queue, settings.queue)
    for task in queue.tasks.values():  # a task's own policy (as its module declared it) wins
        declared = _DECLARED.setdefault(task.name, task.retry_strategy)
        task.retry_strategy = declared or retry_strategy(settings.queue)
    return queue


def retry_strategy(settings: QueueSettings) -> procrastinate.RetryStrategy | None:
    """None when retries are off (procrastinate reads ``max_attempts=0`` as "retry forever")."""
    if settings.retries < 1:
        return None
    return procrastinate.RetryStrategy(max_attempts=settings.retries, exponential_wait=settings.retry_wait_s)


def conninfo(store: Store) -> str:
    """The store's own database (the embedded server's socket and password included) in libpq's URL form."""
    return store.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def defer(session: Session, task: str, queue: str, args: dict[str, Any], priority: int = 0) -> int:
    """Queue ``task(**args)`` as part of ``session``'s transaction; its id. Nothing runs it before the commit."""
    params = {"queue": queue, "task": task, "priority": priority, "args": json.dumps(args)}
    return int(session.execute(_DEFER, params).scalar_one())


def _add_stall_check(queue: procrastinate.App, settings: QueueSettings) -> None:
    async def retry_stalled_jobs(timestamp: int) -> int:
        """Jobs of workers silent for ``stalled_after_s`` go back to ``todo`` (their attempt counted)."""
        stalled = list(await queue.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.stalled_after_s))
        for job in stalled:
            log.warning("queue.stalled_job_retried", job_id=job.id, task=job.task_name)
            await queue.job_manager.retry_job(job)
        return len(stalled)

    task = queue.task(name="worker.retry_stalled_jobs", queue=MAINTENANCE, queueing_lock="retry_stalled_jobs")
    queue.periodic(cron=settings.stall_check_cron)(task(retry_stalled_jobs))


def _add_pruning(queue: procrastinate.App, settings: QueueSettings) -> None:
    async def prune_old_jobs(timestamp: int) -> None:
        """Succeeded jobs older than ``keep_succeeded_h`` deleted, and the errors of jobs no longer there."""
        await queue.job_manager.delete_old_jobs(nb_hours=settings.keep_succeeded_h)
        await queue.connector.execute_query_async(_PRUNE_ERRORS)

    task = queue.task(name="worker.prune_old_jobs", queue=MAINTENANCE, queueing_lock="prune_old_jobs")
    queue.periodic(cron="17 * * * *")(task(prune_old_jobs))


def run(app: App, queues: list[str] | None, concurrency: int | None = None, *, wait: bool = True) -> None:
    """Take jobs until stopped (SIGINT/SIGTERM finish the jobs at hand; ``wait=False``: until the queues are
    empty). A worker given queues also takes the maintenance queue."""
    from likeness.worker import runtime

    runtime.install(app)
    settings = app.settings.queue
    queue = make_queue(app.settings, app.store)
    try:
        queue.run_worker(
            queues=[*queues, MAINTENANCE] if queues else None,
            concurrency=concurrency or settings.concurrency,
            wait=wait,
            update_heartbeat_interval=settings.heartbeat_s,
            stalled_worker_timeout=settings.stalled_after_s,
            fetch_job_polling_interval=settings.poll_s,
        )
    finally:
        runtime.close()
