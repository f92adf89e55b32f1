"""The scheduler's procrastinate tasks (``blueprint``; likeness.worker.queue adds it to the queue).

``schedule.tick`` runs once a minute, once per slot whatever the number of workers (procrastinate's periodic defers
are unique per slot), on the maintenance queue every worker takes. In one transaction it claims the due sources and
subjects (schedule.claim_*) and queues a crawl per source and a re-search per subject, deferred in that same
transaction (worker.queue.defer): the claim and its jobs commit together or not at all. A source whose crawl is
still waiting or running is not queued again. Crawls go to ``io`` at the lowest priority, so the analysis and
matching of what was fetched runs before more is fetched (detection > matching > crawl); a re-search goes to
``match`` at its tier's priority (premium first).

Tasks run in a worker process, on its app (worker.runtime)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import procrastinate
from sqlalchemy import text
from sqlalchemy.orm import Session

from likeness import schedule
from likeness.errors import NotFound
from likeness.log import get_logger
from likeness.services.app import App
from likeness.sources.base import Source

log = get_logger(__name__)
blueprint = procrastinate.Blueprint()
ACTOR = "scheduler"
TICK, CRAWL_SOURCE, RECHECK_SUBJECT = "schedule.tick", "schedule.crawl_source", "schedule.recheck_subject"
CRAWL_PRIORITY = 0  # lowest: analysis and matching of fetched items first
_PENDING = text(
    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE task_name = :task AND status IN ('todo', 'doing') "
    "AND args = CAST(:args AS jsonb))"
)


def likeness_app() -> App:
    from likeness.worker import runtime

    return runtime.current()


@dataclass
class Ticked:
    crawls: list[str] = field(default_factory=list)
    already_queued: list[str] = field(default_factory=list)
    rechecks: list[int] = field(default_factory=list)


@blueprint.periodic(cron="* * * * *", periodic_id="tick")
@blueprint.task(name=TICK, queue="maintenance", queueing_lock=TICK)
def tick(timestamp: int) -> None:
    queue_due(likeness_app(), datetime.fromtimestamp(timestamp, UTC))


def queue_due(app: App, now: datetime) -> Ticked:
    """Queue what is due at ``now``."""
    ticked = Ticked()
    with app.store.transaction() as session:
        for source in schedule.claim_due_sources(session, now):
            if _defer_once(session, CRAWL_SOURCE, "io", {"name": source.name}, CRAWL_PRIORITY):
                ticked.crawls.append(source.name)
            else:
                ticked.already_queued.append(source.name)
        for subject in schedule.claim_due_subjects(session, now, app.settings.schedule):
            priority = app.settings.schedule.tiers[subject.tier].priority
            if _defer_once(session, RECHECK_SUBJECT, "match", {"subject_id": subject.subject_id}, priority):
                ticked.rechecks.append(subject.subject_id)
    if ticked.crawls or ticked.rechecks:
        log.info("schedule.queued", crawls=ticked.crawls, rechecks=ticked.rechecks)
    return ticked


def _defer_once(session: Session, task: str, queue: str, args: dict[str, object], priority: int) -> bool:
    """Queue ``task(**args)`` in ``session``'s transaction unless the same job is waiting or running."""
    import json

    from likeness.worker.queue import defer

    if session.scalar(_PENDING, {"task": task, "args": json.dumps(args)}):
        return False
    defer(session, task, queue, args, priority)
    return True


@blueprint.task(name=CRAWL_SOURCE, queue="io")
def crawl_source(name: str) -> None:
    """One scheduled crawl, resuming from the source's checkpoint (a crawl is idempotent: seen items are skipped)."""
    from likeness.services import crawl

    app = likeness_app()
    with app.store.transaction() as session:
        try:
            found = schedule.get_source(session, name)
        except NotFound:
            return  # removed since it was queued
    summary = crawl.crawl(app, source_of(app, found), actor=ACTOR, max_pages=found.max_pages)
    log.info("schedule.crawled", source=name, pages=summary.pages, stopped=summary.stopped, error=summary.error)


@blueprint.task(name=RECHECK_SUBJECT, queue="match")
def recheck_subject(subject_id: int) -> None:
    """Search the whole catalogue again for one subject's face: only new matches are created (idempotent)."""
    from likeness.match import faces as face_match

    app = likeness_app()
    with app.store.transaction() as session:
        try:
            if not schedule.gets(session, subject_id, app.settings.schedule, "retro_search"):
                return  # its tier changed since it was queued
        except NotFound:
            return  # withdrawn since it was queued
        found = face_match.search_catalogue(session, subject_id, app.settings.faces, actor=ACTOR)
    log.info("schedule.rechecked", subject_id=subject_id, new_matches=found)


def source_of(app: App, found: schedule.SourceSchedule) -> Source:
    from likeness.services import crawl

    if found.kind == "civitai":
        return crawl.civitai(app)
    if found.kind == "reddit":
        return crawl.reddit(app, found.query or "")
    return crawl.deviantart(app, query=found.query)
