"""``/health`` (no token: for load balancers and operators) and ``/v1/metrics`` (Prometheus text).

``/health`` says whether the process serves and reaches its database, and how the task queue stands: jobs waiting,
how long the oldest has waited, each worker's heartbeat. The numbers are counts and ages, nothing about subjects
or media. 503 when the database does not answer, and when a planted honeypot was missed (the pipeline is not
finding what it should: alerts/honeypots.py).

``/v1/metrics`` needs a token with the ``stats`` scope, as ``/v1/stats`` does: it carries the same counts (how many
subjects, matches by status), which say how much is being found and are not for anyone who can reach the port. A
Prometheus scrape job sends the token (``authorization: {credentials: lk_...}``, ``metrics_path: /v1/metrics``).
Everything but the process metrics is counted from the database at each scrape, so every API process reports the
same values and a restart loses nothing; being totals that withdrawal can lower, they are gauges. The ``process_*``
metrics (CPU, memory, file descriptors) are this process's own."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from likeness.api.deps import AppDep, Stats
from likeness.schedule import monitor
from likeness.services import stats
from likeness.services.app import App

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])
_PROMETHEUS = "text/plain"


class WorkerOut(BaseModel):
    id: int
    heartbeat_age_s: float
    alive: bool


class QueueOut(BaseModel):
    installed: bool = Field(description="false until the queue's tables exist (no workers can run yet)")
    depth: int = Field(description="jobs waiting to run now")
    oldest_age_s: float | None = Field(description="seconds the longest-waiting job has waited")
    waiting: dict[str, int] = Field(description="jobs waiting, by queue")
    workers: list[WorkerOut]
    workers_alive: int


class HealthOut(BaseModel):
    status: str = Field(
        description="ok; failing (503) when a honeypot was missed; unavailable (503) without a database"
    )
    database: bool
    queue: QueueOut | None = None
    honeypots_missed: int | None = Field(default=None, description="planted copies the pipeline failed to find")


@router.get(
    "/health", response_model=HealthOut, responses={503: {"model": HealthOut, "description": "failing or unavailable"}}
)
def health(app: AppDep) -> HealthOut | JSONResponse:
    """No authentication: for load balancers and operators."""
    try:
        with app.store.transaction() as session:
            found = monitor.queue_health(session, app.settings.schedule.worker_stale_s)
            missed = _missed_honeypots(session)
    except SQLAlchemyError:
        down = HealthOut(status="unavailable", database=False)
        return JSONResponse(down.model_dump(), status_code=503)
    workers = [WorkerOut(**dataclasses.asdict(w)) for w in found.workers]
    queue = QueueOut(
        installed=found.installed,
        depth=found.depth,
        oldest_age_s=found.oldest_age_s,
        waiting=found.waiting,
        workers=workers,
        workers_alive=sum(w.alive for w in workers),
    )
    if missed:  # the pipeline is not finding what it should: say so to whoever watches (seed 000's honeypots)
        failing = HealthOut(status="failing", database=True, queue=queue, honeypots_missed=missed)
        return JSONResponse(failing.model_dump(), status_code=503)
    return HealthOut(status="ok", database=True, queue=queue, honeypots_missed=missed)


def _missed_honeypots(session: Session) -> int | None:
    """How many planted honeypots were missed; None where the alerts part is not installed."""
    try:
        honeypots = importlib.import_module("likeness.alerts.honeypots")
    except ModuleNotFoundError as exc:
        if exc.name is None or not "likeness.alerts.honeypots".startswith(exc.name):
            raise  # the module is there but something it needs is not: a real error
        return None
    return len(honeypots.missed(session))


@metrics_router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text exposition", "content": {_PROMETHEUS: {"schema": {"type": "string"}}}}
    },
)
def metrics(app: AppDep, principal: Stats) -> Response:
    """Queue, analysis and match counts for Prometheus (the ``stats`` scope)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FromDatabase(app))
    ProcessCollector(registry=registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class _FromDatabase:
    """Collected at each scrape from one read of the database."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        with self.app.store.transaction() as session:
            queue = monitor.queue_health(session, self.app.settings.schedule.worker_stale_s)
        yield from _queue_metrics(queue)
        yield from _catalogue_metrics(stats.stats(self.app))


def _queue_metrics(queue: monitor.QueueHealth) -> Iterator[Metric]:
    yield GaugeMetricFamily("likeness_queue_installed", "1 once the task queue's tables exist", value=queue.installed)
    jobs = GaugeMetricFamily("likeness_queue_jobs", "Jobs in the queue by queue and status", labels=["queue", "status"])
    for (name, status), count in sorted(queue.jobs.items()):
        jobs.add_metric([name, status], count)
    yield jobs
    waiting = GaugeMetricFamily("likeness_queue_waiting", "Jobs waiting to run now, by queue", labels=["queue"])
    for name, count in sorted(queue.waiting.items()):
        waiting.add_metric([name], count)
    yield waiting
    yield GaugeMetricFamily("likeness_queue_depth", "Jobs waiting to run now", value=queue.depth)
    oldest = queue.oldest_age_s or 0.0
    yield GaugeMetricFamily(
        "likeness_queue_oldest_job_age_seconds", "How long the oldest waiting job has waited", value=oldest
    )
    workers = GaugeMetricFamily("likeness_queue_workers", "Workers by heartbeat", labels=["state"])
    workers.add_metric(["alive"], sum(w.alive for w in queue.workers))
    workers.add_metric(["stale"], sum(not w.alive for w in queue.workers))
    yield workers


def _catalogue_metrics(counts: stats.Stats) -> Iterator[Metric]:
    media = GaugeMetricFamily("likeness_media", "Catalogued media by analysis outcome", labels=["outcome"])
    media.add_metric(["analysed"], counts.media - counts.failed_media)
    media.add_metric(["failed"], counts.failed_media)
    yield media
    yield GaugeMetricFamily("likeness_faces", "Faces found in catalogued media", value=counts.faces)
    yield GaugeMetricFamily("likeness_sightings", "Places catalogued media were seen", value=counts.sightings)
    yield GaugeMetricFamily("likeness_subjects", "Enrolled subjects (not withdrawn)", value=counts.subjects)
    yield GaugeMetricFamily("likeness_protected_hashes", "Protected hashes in the banks", value=counts.hashes)
    by_status = GaugeMetricFamily("likeness_matches", "Matches by review status", labels=["status"])
    for status, count in sorted(counts.matches.items()):
        by_status.add_metric([status], count)
    yield by_status
    by_kind = GaugeMetricFamily("likeness_matches_by_kind", "Matches by kind", labels=["kind"])
    for kind, count in sorted(counts.matches_by_kind.items()):
        by_kind.add_metric([kind], count)
    yield by_kind
