"""``likeness abuse``: see and undo what the abuse controls decided; block addresses and ban accounts.

Every action here is logged in the abuse log with the actor "cli" (bans also in the audit chain).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from likeness.cli.shell import out, session, typer_app, usage

if TYPE_CHECKING:
    from likeness.abuse.operators import Measure

abuse_app = typer_app("Abuse controls: blocks, bans, flags and the abuse log.")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """``90``, ``90s``, ``15m``, ``12h``, ``7d``: seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if not found:
        usage(f"not a duration: {value!r} (say 90s, 15m, 12h or 7d)")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


@abuse_app.command("list")
def list_cmd(
    kind: Annotated[str | None, typer.Option("--kind", help="block, ban, shadow_ban, coordinated, enumeration")] = None,
    include_all: Annotated[bool, typer.Option("--all", help="Lifted and expired ones too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """Active blocks, bans and flags, newest first."""
    from likeness.abuse import operators

    with session() as a, a.store.transaction() as s:
        found = operators.list_measures(s, kind=kind, include_inactive=include_all)
        if as_json:
            out.print_json(json.dumps([_as_json(m) for m in found]))
            return
        out.print(_table(found))


def _as_json(m: Measure) -> dict[str, Any]:
    stamp = {name: getattr(m, name) for name in ("created_at", "expires_at", "lifted_at")}
    times = {name: value.isoformat() if value else None for name, value in stamp.items()}
    plain = {"id": m.id, "kind": m.kind, "target": m.target, "reason": m.reason, "actor": m.actor}
    return {**plain, **times, "lifted_by": m.lifted_by, "active": m.active, "detail": m.detail}


def _table(found: list[Measure]) -> Table:
    table = Table("id", "kind", "target", "reason", "by", "since", "until", "active")
    for m in found:
        until = m.expires_at.isoformat(timespec="seconds") if m.expires_at else "-"
        since = m.created_at.isoformat(timespec="seconds")
        cells = (str(m.id), m.kind, m.target, m.reason, m.actor, since, until, "yes" if m.active else "no")
        table.add_row(*map(escape, cells))
    return table


@abuse_app.command("lift")
def lift_cmd(measure_id: Annotated[int, typer.Argument(help="The id `likeness abuse list` shows.")]) -> None:
    """Lift a block, ban or flag now."""
    from likeness.abuse import operators

    with session() as a, a.store.transaction() as s:
        lifted = operators.lift(s, measure_id, actor="cli")
    out.print(f"lifted {lifted.kind} {lifted.id} ({escape(lifted.target)})")


@abuse_app.command("block")
def block_cmd(
    network: Annotated[str, typer.Argument(help="An IP address or a network in CIDR notation.")],
    duration: Annotated[str | None, typer.Option("--for", help="90s, 15m, 12h, 7d; default: until lifted.")] = None,
    reason: Annotated[str, typer.Option(help="Why, for the log.")] = "blocked by an operator",
) -> None:
    """Refuse every API request from an address or network."""
    from likeness.abuse import operators

    seconds = parse_duration(duration) if duration is not None else None
    with session() as a, a.store.transaction() as s:
        measure_id = operators.block(s, network, actor="cli", duration_s=seconds, reason=reason)
    out.print(f"block {measure_id}: {escape(network)}" + (f" for {duration}" if duration else " until lifted"))


@abuse_app.command("ban")
def ban_cmd(
    account_id: Annotated[int, typer.Argument(help="The account's id (`likeness users list`).")],
    shadow: Annotated[bool, typer.Option("--shadow", help="Answer as usual but hold its submissions.")] = False,
    reason: Annotated[str, typer.Option(help="Why, for the log.")] = "banned by an operator",
) -> None:
    """Ban an account: refused outright, or with --shadow accepted, never processed, held for review."""
    from likeness.abuse import operators

    with session() as a, a.store.transaction() as s:
        measure_id = operators.ban(s, account_id, actor="cli", shadow=shadow, reason=reason)
    out.print(f"{'shadow ban' if shadow else 'ban'} {measure_id}: account {account_id}")


@abuse_app.command("log")
def log_cmd(
    limit: Annotated[int, typer.Option(help="How many rows, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """The abuse log: who, what, why, when."""
    from likeness.abuse import operators

    with session() as a, a.store.transaction() as s:
        rows = [_log_json(row) for row in operators.log(s, limit=limit)]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("at", "decision", "reason", "actor", "account", "ip", "measure")
    for row in rows:
        cells = (
            row["at"],
            row["decision"],
            row["reason"],
            row["actor"],
            row["account_id"],
            row["ip"],
            row["measure_id"],
        )
        table.add_row(*(escape("" if c is None else str(c)) for c in cells))
    out.print(table)


def _log_json(row: Any) -> dict[str, Any]:
    names = ("id", "actor", "decision", "reason", "account_id", "token_id", "ip", "measure_id", "detail")
    return {"at": row.at.isoformat(), **{name: getattr(row, name) for name in names}}


@abuse_app.command("held")
def held_cmd(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """Submissions of shadow-banned callers, accepted and never processed: what the API said of them."""
    from likeness.abuse import operators

    with session() as a, a.store.transaction() as s:
        rows = [_held_json(row) for row in operators.held(s, limit=limit)]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "at", "what", "account", "ip", "detail")
    for row in rows:
        cells = (row["id"], row["at"], row["what"], row["account_id"], row["ip"], json.dumps(row["detail"]))
        table.add_row(*(escape("" if c is None else str(c)) for c in cells))
    out.print(table)


def _held_json(row: Any) -> dict[str, Any]:
    names = ("id", "what", "account_id", "token_id", "ip", "detail")
    return {"at": row.created_at.isoformat(), **{name: getattr(row, name) for name in names}}
