"""Jobs as the operator sees them: listed with the last error of each, failed ones put back in the queue.

procrastinate keeps a job's status and attempts but not why it failed; ``recorded`` wraps a task so that each
failed attempt stores its error (job_errors, one row per job) before procrastinate decides on a retry."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from procrastinate import JobContext
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from likeness.errors import Conflict, NotFound
from likeness.store import Store
from likeness.store.models import JobError
from likeness.text import clean

R = TypeVar("R")


@dataclass(frozen=True)
class JobRow:
    id: int
    task: str
    queue: str
    status: str
    attempts: int
    args: dict[str, Any]
    error: str | None
    failed_at: datetime | None


_LIST = text(
    "SELECT j.id, j.task_name, j.queue_name, j.status::text AS status, j.attempts, j.args, e.error, e.at "
    "FROM procrastinate_jobs j LEFT JOIN job_errors e ON e.job_id = j.id "
    "WHERE CAST(:status AS text) IS NULL OR j.status::text = :status ORDER BY j.id DESC LIMIT :limit"
)


def list_jobs(session: Session, status: str | None = None, limit: int = 100) -> list[JobRow]:
    return [JobRow(*row) for row in session.execute(_LIST, {"status": status, "limit": limit})]


def retry(session: Session, job_id: int) -> None:
    """A failed job back to ``todo``, to run now (its attempts go on counting)."""
    status = session.execute(text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id})
    found = status.scalar_one_or_none()
    if found is None:
        raise NotFound(f"no job {job_id}")
    if found != "failed":
        raise Conflict(f"job {job_id} is {found}: only failed jobs are retried")
    session.execute(text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)"), {"id": job_id})


def record_error(store: Store, context: JobContext, exc: BaseException) -> None:
    job = context.job
    assert job.id is not None
    row = {"job_id": job.id, "task_name": job.task_name, "attempt": job.attempts + 1, "error": describe(exc)}
    statement = insert(JobError).values(row)
    with store.transaction() as session:
        session.execute(statement.on_conflict_do_update(index_elements=["job_id"], set_={**row, "at": text("now()")}))


def describe(exc: BaseException) -> str:
    kind = getattr(exc, "kind", exc.__class__.__name__)
    return clean(f"{kind}: {exc}", 2000)


def recorded(func: Callable[..., R]) -> Callable[..., R]:
    """The task (given its JobContext first) with each failure's error stored, then raised for the retry policy."""

    @functools.wraps(func)
    def run(context: JobContext, **kwargs: Any) -> R:
        from likeness.worker import runtime

        try:
            return func(**kwargs)
        except Exception as exc:
            record_error(runtime.current().store, context, exc)
            raise

    return run
