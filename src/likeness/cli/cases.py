"""``likeness cases ...``: frozen evidence for matches. A case is opened on a match's first capture; ``export``
writes its signed bundle from the evidence store (nothing is re-fetched) and ``verify`` checks one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from likeness.cli.shell import FAILED, Format, err, out, session, typer_app

cases_app = typer_app("Cases: evidence frozen from matches' pages, signed bundles.")
ACTOR = "cli"

# --- NOTICES: the `takedown` sub-app (cli/takedown.py) is registered here, as `likeness cases takedown` ---------
from likeness.cli.takedown import takedown_app  # noqa: E402

cases_app.add_typer(takedown_app, name="takedown")
# --- end NOTICES ------------------------------------------------------------------------------------------------


@cases_app.command("list")
def list_cmd(fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table) -> None:
    """Every case: its match, whether its key still exists, its captures."""
    from likeness.services import evidence

    with session() as a:
        cases = evidence.list_cases(a)
    if fmt == Format.json:
        out.print_json(json.dumps([_case_json(c) for c in cases]))
        return
    table = Table("case", "match", "sealed", "captures", "last capture", "bytes")
    for c in cases:
        last = c.captures[-1] if c.captures else None
        when = last.captured_at.isoformat(timespec="seconds") if last else "-"
        table.add_row(
            str(c.id), str(c.match_id), str(c.sealed), str(len(c.captures)), when, str(last.bytes if last else 0)
        )
    out.print(table)


@cases_app.command("show")
def show(case_id: int, fmt: Annotated[Format, typer.Option("--format")] = Format.json) -> None:
    """One case and every capture of it (URL, manifest SHA-256, files, size, time taken)."""
    from likeness.services import evidence

    with session() as a:
        found = evidence.show(a, case_id)
    out.print_json(json.dumps(_case_json(found)))


@cases_app.command("capture")
def capture(match_id: int) -> None:
    """Freeze the match's page now in headless Chromium (through the SSRF guard), sealed and signed."""
    from likeness.services import evidence

    with session() as a:
        done = evidence.capture(a, match_id, actor=ACTOR)
    out.print_json(json.dumps(_capture_json(done)))


@cases_app.command("export")
def export(
    case_id: int,
    to: Annotated[Path, typer.Option("--out", help="the bundle to write (a zip)")],
    capture_id: Annotated[int | None, typer.Option("--capture", help="a capture other than the latest")] = None,
) -> None:
    """Write the case's signed bundle: every file, its manifest and the manifest's signature."""
    from likeness.services import evidence

    with session() as a:
        size = evidence.export(a, case_id, to, capture_id)
    out.print(f"wrote {to} ({size} bytes)")


@cases_app.command("verify")
def verify(bundle: Path) -> None:
    """Check a bundle: the signature, every file's SHA-256, every byte. Exit 1 on any change."""
    from likeness.errors import EvidenceAltered
    from likeness.services import evidence

    with session() as a:
        try:
            verdict, recorded = evidence.verify(a, bundle)
        except EvidenceAltered as exc:
            err.print(f"[red]altered:[/red] {exc}", soft_wrap=True)
            raise typer.Exit(FAILED) from exc
    m = verdict.manifest
    out.print(f"intact: case {m.get('case')}, match {m.get('match')}, {len(m.get('files', []))} files")
    out.print(f"signed by {verdict.public_key} ({'this installation' if verdict.ours else 'another key'})")
    out.print(f"recorded here: capture {recorded.id}" if recorded else "not recorded in this installation")


def _capture_json(c: Any) -> dict[str, Any]:
    return {
        "capture": c.id,
        "case": c.case_id,
        "match": c.match_id,
        "url": c.url,
        "manifest_sha256": c.manifest_sha256,
        "files": c.files,
        "bytes": c.bytes,
        "seconds": c.seconds,
        "captured_at": c.captured_at.isoformat(),
    }


def _case_json(c: Any) -> dict[str, Any]:
    captures = [_capture_json(x) for x in c.captures]
    return {
        "case": c.id,
        "match": c.match_id,
        "sealed": c.sealed,
        "created_at": c.created_at.isoformat(),
        "captures": captures,
    }
