"""``likeness cases takedown ...`` (mounted by cli/cases.py): takedown notices drafted from a match, marked sent,
re-checked until removed.

Sending stays a person's act: ``draft`` writes the text to paste or mail, ``sent`` starts the deadline, ``check``
reads each location again and lists what is still up past its deadline (to escalate).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from likeness.cli.shell import Format, out, session, typer_app

if TYPE_CHECKING:
    from likeness.services.notices import NoticeRecord

takedown_app = typer_app("Takedown notices: draft from a match, mark sent, re-check until removed.")
ACTOR = "cli"
KINDS = "dmca, gdpr, takedown-act, civitai, reddit or deviantart"


@takedown_app.command("draft")
def draft_cmd(
    match_id: Annotated[int, typer.Argument(help="The match the notice is about.")],
    kind: Annotated[str, typer.Option("--kind", help=KINDS)],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write the notice here (default: print it).")] = None,
    ground: Annotated[str, typer.Option("--ground", help="gdpr: the Art. 17(1) ground, a to f.")] = "d",
    work: Annotated[str | None, typer.Option("--work", help="dmca: the copyrighted work.")] = None,
    evidence: Annotated[list[str] | None, typer.Option("--evidence", help="Evidence id to cite (repeatable).")] = None,
) -> None:
    """Draft a notice pre-filled from the match; tracked as drafted until "takedown sent"."""
    from likeness.cases.report import write
    from likeness.services import notices

    with session() as a:
        found = notices.draft(a, match_id, kind, actor=ACTOR, ground=ground, work=work, evidence=evidence)
    if out_file is None:
        out.print(found.text, markup=False, highlight=False, end="")
    else:
        write(out_file, found.text)  # 0600: a notice names the person it is about
    typer.echo(f"notice {found.notice.id}: {kind} about match {match_id}, drafted", err=out_file is None)


@takedown_app.command("sent")
def sent_cmd(
    notice_id: Annotated[int, typer.Argument(help="The notice.")],
    channel: Annotated[str, typer.Option("--channel", help="Where it went: an email address, a form's URL.")],
) -> None:
    """Mark a notice sent: its deadline starts now."""
    from likeness.services import notices

    with session() as a:
        found = notices.mark_sent(a, notice_id, channel, actor=ACTOR)
    out.print(f"notice {found.id}: sent via {found.channel}, due {_when(found.deadline_at)}", markup=False)


@takedown_app.command("response")
def response_cmd(
    notice_id: Annotated[int, typer.Argument(help="The notice.")],
    text: Annotated[str, typer.Argument(help="What the platform or controller answered.")],
) -> None:
    """Record the answer to a notice (kept sealed)."""
    from likeness.services import notices

    with session() as a:
        notices.respond(a, notice_id, text, actor=ACTOR)
    out.print(f"notice {notice_id}: response recorded")


@takedown_app.command("check")
def check_cmd(
    notice_id: Annotated[int | None, typer.Argument(help="One notice (default: every open one).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Re-fetch each location: removed on 404/410 or another picture, still_up past the deadline (escalate)."""
    from likeness.services import notices

    with session() as a:
        results = notices.check(a, notice_id, actor=ACTOR)
    found = [r.notice for r in results]
    if fmt == Format.json:
        out.print_json(json.dumps([_json(n) for n in found]))
        return
    _table(found)
    escalate = [r.notice.id for r in results if r.escalate]
    if escalate:
        out.print(f"still up past the deadline (escalate): {', '.join(map(str, escalate))}", markup=False)


@takedown_app.command("list")
def list_cmd(
    status: Annotated[str | None, typer.Option("--status", help="drafted, sent, removed or still_up")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Notices, oldest first, with their deadlines."""
    from likeness.services import notices

    with session() as a:
        found = notices.list_notices(a, status)
    if fmt == Format.json:
        out.print_json(json.dumps([_json(n) for n in found]))
        return
    _table(found)


def _table(found: list[NoticeRecord]) -> None:
    table = Table("id", "kind", "match", "status", "channel", "sent", "deadline", "checked", "finding")
    for n in found:
        table.add_row(
            str(n.id), n.kind, str(n.match_id), n.status, n.channel or "-", _when(n.sent_at), _when(n.deadline_at),
            _when(n.checked_at), n.finding or "-",
        )  # fmt: skip
    out.print(table)


def _json(n: NoticeRecord) -> dict[str, object]:
    return {
        "id": n.id, "kind": n.kind, "match_id": n.match_id, "location": n.location, "status": n.status,
        "channel": n.channel, "drafted_at": _when(n.drafted_at), "sent_at": _when(n.sent_at),
        "deadline_at": _when(n.deadline_at), "checked_at": _when(n.checked_at), "finding": n.finding,
    }  # fmt: skip


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "-"
