"""``likeness worker``: take jobs from the queue; ``likeness jobs list|retry``: what is queued, failed and why."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from likeness.cli.shell import Format, out, session, typer_app, usage

jobs_app = typer_app("Queued jobs: list them (failed ones with their error), retry failed ones.")


def worker(
    queue: Annotated[
        list[str] | None, typer.Option("--queue", help="analysis, io or match (repeatable); default: every queue.")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(help="Jobs at once (default: queue.concurrency).")] = None,
) -> None:
    """Run jobs until stopped (Ctrl-C or SIGTERM let the jobs at hand finish). Start as many as you like, here
    or on other machines sharing the database: each job runs once."""
    from likeness.worker import queue as queues

    unknown = [q for q in queue or [] if q not in queues.QUEUES]
    if unknown:
        usage(f"no queue {unknown[0]!r}: the queues are {', '.join(queues.QUEUES)}")
    if concurrency is not None and concurrency < 1:
        usage("--concurrency must be at least 1")
    with session() as a:
        queues.run(a, queue, concurrency)


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(help="todo, doing, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option(help="The newest this many.")] = 100,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """The newest jobs first, with the last error of those that failed."""
    from likeness.worker import jobs

    with session() as a, a.store.transaction() as s:
        rows = jobs.list_jobs(s, status, limit)
    if fmt == Format.json:
        out.print_json(json.dumps([_as_json(r) for r in rows]))
        return
    table = Table("id", "task", "queue", "status", "attempts", "error")
    for r in rows:
        table.add_row(str(r.id), r.task, r.queue, r.status, str(r.attempts), escape(r.error or ""))
    out.print(table)


def _as_json(row: object) -> dict[str, object]:
    from dataclasses import asdict

    data = asdict(row)  # type: ignore[call-overload]
    data["failed_at"] = data["failed_at"].isoformat() if data["failed_at"] else None
    return data


@jobs_app.command("retry")
def jobs_retry(job_ids: Annotated[list[int], typer.Argument(help="Ids of failed jobs.")]) -> None:
    """Put failed jobs back in the queue, to run now."""
    from likeness.worker import jobs

    with session() as a, a.store.transaction() as s:
        for job_id in job_ids:
            jobs.retry(s, job_id)
    out.print(f"{len(job_ids)} job(s) queued again")
