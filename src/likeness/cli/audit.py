"""``likeness audit``: verify the keyed chain (exit 0 intact, 1 broken) and export the log as JSON lines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from likeness.cli.shell import FAILED, err, out, session, typer_app

audit_app = typer_app("The audit log: verify its chain, export it.")


@audit_app.command("verify")
def verify_cmd() -> None:
    """Check every row's MAC, the sequence and the checkpointed head: exit 0 when intact, 1 when not."""
    from likeness.services import audit

    with session() as a:
        verdict = audit.verify(a)
    if not verdict.intact:
        err.print(f"[red]audit log broken at row {verdict.first_bad}:[/red] {escape(verdict.reason or '')}")
        raise typer.Exit(FAILED)
    if verdict.checkpoint is not None:
        out.print(f"audit log intact: {verdict.rows} row(s), checkpointed at row {verdict.checkpoint}")
    else:
        out.print(f"audit log intact: {verdict.rows} row(s)")
        err.print("[yellow]warning:[/yellow] no checkpoint here: a truncated log cannot be told from a short one")


@audit_app.command("export")
def export_cmd(
    out_path: Annotated[Path | None, typer.Option("--out", help="Write here (mode 0600) instead of stdout.")] = None,
    decrypt: Annotated[bool, typer.Option(help="Add the personal parts whose owners' keys still exist.")] = False,
) -> None:
    """Write every audit row as a JSON line, MACs included."""
    from likeness.services import audit

    with session() as a:
        if out_path is None:
            audit.export(a, lambda line: typer.echo(line, nl=False), decrypt)
            return
        count = audit.export_file(a, out_path, decrypt)
    err.print(f"{count} audit row(s) written to {escape(str(out_path))}")
