"""``likeness reports ...``: NCII case reports. ``add`` opens a case and shows its number and PIN once; ``status``
and ``withdraw`` ask for the PIN (never an option: it would stay in the shell's history)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from likeness.cli.shell import Format, out, session, typer_app, usage

if TYPE_CHECKING:
    from likeness.services.cases import CaseStatus

reports_app = typer_app("NCII case reports: open one, check its status or withdraw it with its number and PIN.")
ACTOR = "cli"
Number = Annotated[str, typer.Argument(help="The case number, as XXXXX-XXXXX.")]
FormatOption = Annotated[Format, typer.Option("--format", help="table or json")]


@reports_app.command("add")
def add_cmd(
    kind: Annotated[str, typer.Option("--kind", help="intimate_image, sextortion, deepfake, voyeurism or other")],
    description: Annotated[str, typer.Option("--description", help="What happened (stored encrypted).")],
    url: Annotated[list[str] | None, typer.Option("--url", help="Where it is; repeat for more.")] = None,
    platform: Annotated[list[str] | None, typer.Option("--platform", help="Which platform; repeat.")] = None,
    contact: Annotated[
        list[str] | None, typer.Option("--contact", help="How to reach the victim, as how=value (email=...); repeat.")
    ] = None,
    hash_id: Annotated[list[int] | None, typer.Option("--hash-id", help="A linked protected hash; repeat.")] = None,
    submission: Annotated[str | None, typer.Option("--submission", help="A linked submission's label.")] = None,
) -> None:
    """Open a case. Its number and PIN are shown once: give both to the victim."""
    from likeness.services import cases

    with session() as a:
        made = cases.report(a, kind=kind, description=description, contact=_contact(contact or []), urls=url or [],
                            platforms=platform or [], hash_ids=hash_id or [], submission=submission,
                            actor=ACTOR)  # fmt: skip
    out.print(f"case {made.number}")
    out.print(f"PIN {made.pin}  (shown once: it is not stored)")


def _contact(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        how, sep, value = pair.partition("=")
        if not sep or not how.strip() or not value.strip():
            usage(f"--contact takes how=value, as email=someone@example.org; not {pair!r}")
        found[how.strip()] = value.strip()
    return found


@reports_app.command("status")
def status_cmd(number: Number, fmt: FormatOption = Format.table) -> None:
    """The case's status; asks for its PIN."""
    from likeness.services import cases

    pin = typer.prompt("PIN", hide_input=True)
    with session() as a:
        _show(cases.status(a, number, pin), fmt)


@reports_app.command("withdraw")
def withdraw_cmd(number: Number, fmt: FormatOption = Format.table) -> None:
    """Withdraw the case; asks for its PIN. Everything personal in it becomes unreadable, for good."""
    from likeness.services import cases

    pin = typer.prompt("PIN", hide_input=True)
    with session() as a:
        _show(cases.withdraw(a, number, pin, actor=ACTOR), fmt)


def _show(found: CaseStatus, fmt: Format) -> None:
    if fmt == Format.json:
        out.print_json(
            json.dumps(
                {
                    "number": found.number,
                    "kind": found.kind,
                    "status": found.status,
                    "platforms": found.platforms,
                    "created_at": found.created_at.isoformat(),
                    "updated_at": found.updated_at.isoformat(),
                    "withdrawn_at": found.withdrawn_at.isoformat() if found.withdrawn_at else None,
                }
            )
        )
        return
    when = f", withdrawn {found.withdrawn_at:%Y-%m-%d %H:%M}" if found.withdrawn_at else ""
    platforms = ", ".join(found.platforms) or "-"
    opened = f"{found.created_at:%Y-%m-%d}"
    out.print(f"case {found.number}: {found.status} ({found.kind}; {platforms}; opened {opened}{when})")
