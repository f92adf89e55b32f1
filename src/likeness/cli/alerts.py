"""``likeness alerts ...`` (where new matches are told) and ``likeness honeypot ...`` (canaries for the pipeline)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from likeness.cli.shell import FAILED, out, session, typer_app

ACTOR = "cli"

alerts_app = typer_app("Tell webhooks and mailboxes about new matches (never the pictures).")
honeypot_app = typer_app("Synthetic subjects planted where the pipeline must find them.")


class Channel(StrEnum):
    webhook = "webhook"
    email = "email"


class Tier(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


@alerts_app.command("add")
def add(
    channel: Annotated[Channel, typer.Argument(help="webhook or email")],
    targets: Annotated[list[str], typer.Argument(help="The webhook's URL, or email addresses.")],
    min_tier: Annotated[Tier, typer.Option("--min-tier", help="Tell matches of this tier and above.")] = Tier.medium,
    subject: Annotated[int | None, typer.Option(help="Subject-facing: only this subject's matches.")] = None,
    digest_minutes: Annotated[int, typer.Option(help="Email: at most one digest this often.")] = 0,
    locations: Annotated[bool | None, typer.Option(help="Carry where-found URLs (default: operator webhooks).")] = None,
    secret: Annotated[str | None, typer.Option(help="Webhook HMAC secret (default: a new one, shown once).")] = None,
) -> None:
    from likeness.alerts import rules

    options = {"subject_id": subject, "digest_s": digest_minutes * 60, "locations": locations}
    with session() as a, a.store.transaction() as s:
        if channel is Channel.webhook:
            rule, made = rules.add_webhook(s, targets[0], min_tier.value, actor=ACTOR, secret=secret, **options)
        else:
            rule, made = rules.add_email(s, targets, min_tier.value, actor=ACTOR, **options), None
    out.print(f"alert rule {rule.id}: {rule.channel} {rule.shown()} from tier {rule.min_tier}")
    if made and not secret:
        out.print(f"webhook secret (shown once): {made}", markup=False)


@alerts_app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    from likeness.alerts import rules

    with session() as a, a.store.transaction() as s:
        found = rules.list_rules(s)
    rows = [
        {
            "id": r.id,
            "channel": r.channel,
            "target": r.shown(),
            "min_tier": r.min_tier,
            "subject_id": r.subject_id,
            "digest_s": r.digest_s,
            "locations": r.locations,
        }
        for r in found
    ]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    for row in rows:
        out.print(" ".join(f"{k}={v}" for k, v in row.items()), markup=False)


@alerts_app.command("remove")
def remove(rule_id: int) -> None:
    from likeness.alerts import rules

    with session() as a, a.store.transaction() as s:
        rules.remove_rule(s, rule_id, actor=ACTOR)
    out.print(f"alert rule {rule_id} removed")


@alerts_app.command("test")
def test_cmd(rule_id: int) -> None:
    """Send a test event to one rule now."""
    from likeness.alerts import deliver

    with session() as a:
        deliver.send_test(a.store, rule_id, a.settings)
    out.print(f"alert rule {rule_id}: test sent")


@alerts_app.command("send")
def send() -> None:
    """Send what is due (workers do this every minute; without them, run this or let `likeness scan` do it)."""
    from likeness.alerts import deliver

    with session() as a:
        done = deliver.send_due(a.store, a.settings)
    out.print(f"{done.sent} sent, {done.failed} failed (retried later), {done.waiting} waiting for their digest")
    if done.failed:
        raise typer.Exit(FAILED)


@honeypot_app.command("plant")
def plant() -> None:
    """Enrol the honeypot subjects (once) and plant a fresh copy of each in the honeypot folder."""
    from likeness.services import honeypots

    with session() as a:
        planted = honeypots.plant(a, actor=ACTOR)
    for p in planted:
        out.print(f"honeypot {p.honeypot_id} (subject {p.subject_id}, {p.picture}): planted {p.location}", markup=False)


@honeypot_app.command("check")
def check(
    scan: Annotated[bool, typer.Option(help="Scan the honeypot folder first (else only plants past grace).")] = True,
) -> None:
    """Exit 1, and alert, when the pipeline missed a honeypot."""
    from likeness.services import honeypots

    with session() as a:
        checked = honeypots.check(a, actor=ACTOR, scan_folder=scan)
    for m in checked.missed:
        out.print(f"MISSED honeypot {m.honeypot_id}: plant {m.plant_id} at {m.location}", markup=False)
    if checked.missed:
        raise typer.Exit(FAILED)
    out.print(f"no honeypot missed ({checked.scanned} files scanned)")
