"""What ``/health`` and ``/metrics`` report, read from PostgreSQL so every API process reports the same numbers:
the queue (procrastinate's ``procrastinate_jobs``, ``procrastinate_events`` and ``procrastinate_workers``) and the
catalogue's counts. Until the queue's schema is installed (migration 0012) the queue reads as not installed rather
than failing: the API serves without workers."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

# A job waits from when it was (re)queued or, if later, from when it was scheduled for; jobs scheduled for the
# future are not waiting yet.
_WAITING = text("""
SELECT j.queue_name, count(*), max(extract(epoch FROM now() - greatest(j.scheduled_at, e.at)))
FROM procrastinate_jobs j
LEFT JOIN LATERAL (
    SELECT max(at) AS at FROM procrastinate_events
    WHERE job_id = j.id AND type IN ('deferred', 'deferred_for_retry')
) e ON true
WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
GROUP BY j.queue_name
""")
_BY_STATUS = text("SELECT queue_name, status::text, count(*) FROM procrastinate_jobs GROUP BY queue_name, status")
_WORKERS = text("SELECT id, extract(epoch FROM now() - last_heartbeat) FROM procrastinate_workers ORDER BY id")


@dataclass(frozen=True)
class Worker:
    id: int
    heartbeat_age_s: float
    alive: bool  # heartbeat within the stale limit


@dataclass
class QueueHealth:
    installed: bool
    depth: int = 0  # jobs waiting to run now
    oldest_age_s: float | None = None  # how long the longest-waiting job has waited
    waiting: dict[str, int] = field(default_factory=dict)  # by queue
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, status): count, every status
    workers: list[Worker] = field(default_factory=list)


def installed(session: Session) -> bool:
    return session.scalar(text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")) is True


def queue_health(session: Session, stale_s: float) -> QueueHealth:
    """The queue as it stands; a worker whose heartbeat is older than ``stale_s`` counts as not alive."""
    if not installed(session):
        return QueueHealth(installed=False)
    found = QueueHealth(installed=True)
    for queue, count, oldest in session.execute(_WAITING):
        found.waiting[queue] = int(count)
        found.depth += int(count)
        if oldest is not None:
            found.oldest_age_s = max(float(oldest), found.oldest_age_s or 0.0)
    found.jobs = {(q, s): int(n) for q, s, n in session.execute(_BY_STATUS)}
    found.workers = [Worker(int(i), float(age), float(age) <= stale_s) for i, age in session.execute(_WORKERS)]
    return found
