"""``likeness schedule ...``: crawl sources on a cadence and subject tiers (free / protected / premium). The
scheduler (``likeness worker``, ``likeness serve``) queues what comes due; these commands only set the records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from likeness.cli.abuse import parse_duration
from likeness.cli.shell import Format, out, session, typer_app

schedule_app = typer_app("Crawl sources on a cadence; subject tiers and what each gets.")
ACTOR = "cli"


@schedule_app.command("list")
def list_cmd(fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table) -> None:
    """Scheduled sources (cadence, next due) and subjects (tier, next re-search)."""
    from likeness import schedule

    with session() as a, a.store.transaction() as s:
        sources = schedule.list_sources(s)
        subjects = schedule.list_subjects(s, a.settings.schedule)
        tiers = a.settings.schedule.tiers
    if fmt == Format.json:
        found = {"sources": [_source_json(x) for x in sources], "subjects": [_subject_json(x) for x in subjects]}
        out.print_json(json.dumps({**found, "tiers": {k: v.model_dump() for k, v in tiers.items()}}))
        return
    table = Table("source", "kind", "query", "every", "pages", "enabled", "last queued", "next due")
    for x in sources:
        table.add_row(
            x.name,
            x.kind,
            x.query or "-",
            f"{x.every_s}s",
            str(x.max_pages),
            str(x.enabled),
            _when(x.last_deferred_at),
            _when(x.due_at),
        )
    out.print(table)
    people = Table("subject", "tier", "last re-search", "next due", "gets")
    for y in subjects:
        gets = [w for w in schedule.WHAT if getattr(tiers[y.tier], w)]
        people.add_row(str(y.subject_id), y.tier, _when(y.last_checked_at), _when(y.due_at), ", ".join(gets))
    out.print(people)


@schedule_app.command("set")
def set_cmd(
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    kind: Annotated[str, typer.Option("--kind", help="civitai, reddit or deviantart")],
    every: Annotated[str, typer.Option("--every", help="Cadence: 90m, 6h, 1d (at least 60s).")] = "1h",
    query: Annotated[str | None, typer.Option("--query", help="reddit: the subreddit; deviantart: a query")] = None,
    max_pages: Annotated[int, typer.Option("--max-pages", help="Pages a run walks at most.")] = 10,
    disabled: Annotated[bool, typer.Option("--disabled", help="Keep it, but queue nothing.")] = False,
) -> None:
    """Create or change a scheduled crawl source."""
    from likeness import schedule

    every_s = int(parse_duration(every))
    with session() as a, a.store.transaction() as s:
        found = schedule.set_source(
            s, name, kind, query=query, max_pages=max_pages, every_s=every_s, enabled=not disabled, actor=ACTOR
        )
    out.print(f"{found.name}: {found.kind} every {found.every_s}s, next due {_when(found.due_at)}")


@schedule_app.command("remove")
def remove_cmd(name: Annotated[str, typer.Argument(help="The schedule's name.")]) -> None:
    from likeness import schedule

    with session() as a, a.store.transaction() as s:
        schedule.remove_source(s, name, actor=ACTOR)
    out.print(f"{name}: removed")


@schedule_app.command("tier")
def tier_cmd(
    subject_id: Annotated[int, typer.Argument(help="The subject's id.")],
    tier: Annotated[str, typer.Argument(help="free, protected or premium (settings.schedule.tiers)")],
) -> None:
    """Put a subject on a tier: its re-search cadence and what it gets."""
    from likeness import schedule

    with session() as a, a.store.transaction() as s:
        schedule.set_tier(s, subject_id, tier, a.settings.schedule, actor=ACTOR)
    out.print(f"subject {subject_id}: {tier}")


def _when(at: datetime | None) -> str:
    if at is None:
        return "-"
    return "now" if at.year <= 2000 else at.astimezone(UTC).isoformat(timespec="seconds")


def _source_json(x: Any) -> dict[str, Any]:
    return {
        "name": x.name,
        "kind": x.kind,
        "query": x.query,
        "every_s": x.every_s,
        "max_pages": x.max_pages,
        "enabled": x.enabled,
        "last_deferred_at": _iso(x.last_deferred_at),
        "due_at": _iso(x.due_at),
    }


def _subject_json(y: Any) -> dict[str, Any]:
    return {
        "subject_id": y.subject_id,
        "tier": y.tier,
        "last_checked_at": _iso(y.last_checked_at),
        "due_at": _iso(y.due_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None
