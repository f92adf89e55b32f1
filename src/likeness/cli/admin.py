"""``likeness serve``, ``likeness users add|list|disable``, ``likeness tokens create|list|revoke``.

A token is printed once, when it is created: only its digest is kept, so it cannot be shown again."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from likeness.cli.shell import Format, err, out, session, typer_app, usage

users_app = typer_app(
    "Accounts for the API and the web pages: admins, reviewers, and subjects (each bound to one enrolled subject, or "
    "to none yet: it then enrolls itself on the web portal)."
)
tokens_app = typer_app("API tokens: shown once, kept only as digests, with scopes and an expiry.")
ACTOR = "cli"


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[
        int, typer.Option(help="Also run this many queue workers (`likeness worker`), which run the scheduler too.")
    ] = 0,
) -> None:
    """Serve the HTTP API (OpenAPI document at /openapi.json, its page at /docs) and the web pages (/); with
    --workers, one machine runs everything: the API, the queue's workers and, on them, the scheduler's periodic tick."""
    import uvicorn

    from likeness.web import create_site

    if workers < 0:
        usage("--workers must be 0 or more")
    with session() as a:
        started = _start_workers(workers)
        try:
            uvicorn.run(create_site(a), host=host, port=port, log_level=a.settings.log_level.lower())
        finally:
            _stop_workers(started)


_WORKER = "import sys; from likeness.cli.main import app; sys.exit(app())"


def _start_workers(n: int) -> list[subprocess.Popen[bytes]]:
    """Worker processes of their own (each job's analysis runs under its budget in them, not in the API's)."""
    return [subprocess.Popen([sys.executable, "-c", _WORKER, "worker"]) for _ in range(n)]


def _stop_workers(started: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM lets each finish the jobs at hand; one that does not within a minute is killed (its jobs are retried
    by the stalled-job check)."""
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[str, typer.Option(help="admin, reviewer or subject.")] = "reviewer",
    subject: Annotated[
        int | None, typer.Option(help="A subject account's enrolled subject id (none: it enrolls itself on /me).")
    ] = None,
    password: Annotated[bool, typer.Option(help="Ask for a password (to create tokens over HTTP).")] = False,
) -> None:
    """Add an account."""
    from likeness import accounts

    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    with session() as a, a.store.transaction() as s:
        made = accounts.create_user(s, username, role, actor=ACTOR, password=secret, subject_id=subject)
    out.print(f"account {made.id}: {escape(made.username)} ({made.role})")


@users_app.command("list")
def users_list(fmt: Annotated[Format, typer.Option("--format")] = Format.table) -> None:
    """Every account."""
    from likeness import accounts

    with session() as a, a.store.transaction() as s:
        found = accounts.list_users(s)
    if fmt is Format.json:
        rows = [
            {
                "id": u.id,
                "username": u.username,
                "role": u.role,
                "subject_id": u.subject_id,
                "disabled": u.disabled,
                "created_at": u.created_at.isoformat(),
            }
            for u in found
        ]
        out.print_json(json.dumps(rows))
        return
    table = Table("id", "username", "role", "subject", "disabled", "created")
    for u in found:
        table.add_row(
            str(u.id),
            escape(u.username),
            u.role,
            str(u.subject_id or ""),
            "yes" if u.disabled else "",
            f"{u.created_at:%Y-%m-%d}",
        )
    out.print(table)


@users_app.command("disable")
def users_disable(username: Annotated[str, typer.Argument(help="The login name.")]) -> None:
    """Disable an account; its tokens are revoked."""
    from likeness import accounts

    with session() as a, a.store.transaction() as s:
        accounts.disable_user(s, accounts.find_user(s, username).id, actor=ACTOR)
    out.print(f"{escape(username)} disabled; its tokens are revoked")


@tokens_app.command("create")
def tokens_create(
    username: Annotated[str, typer.Argument(help="The account the token acts as.")],
    scope: Annotated[
        list[str] | None, typer.Option("--scope", help="A scope (repeat); default: all of the role.")
    ] = None,
    days: Annotated[float, typer.Option(help="Days until it expires.")] = 90.0,
    label: Annotated[str, typer.Option(help="What the token is for.")] = "",
) -> None:
    """Create a token and print it, once."""
    from likeness import accounts

    with session() as a, a.store.transaction() as s:
        new = accounts.create_token(
            s, accounts.find_user(s, username).id, actor=ACTOR, label=label, scopes=scope or None, days=days
        )
    err.print(f"token {new.info.id} (scopes: {' '.join(new.info.scopes)}); shown this once:")
    print(new.token)


@tokens_app.command("list")
def tokens_list(username: Annotated[str | None, typer.Argument(help="Only this account's tokens.")] = None) -> None:
    """Tokens (never their values: those are not kept)."""
    from likeness import accounts

    with session() as a, a.store.transaction() as s:
        owner = accounts.find_user(s, username).id if username else None
        found = accounts.list_tokens(s, owner)
    table = Table("id", "account", "label", "scopes", "expires", "revoked", "last used")
    for t in found:
        table.add_row(
            str(t.id),
            str(t.account_id),
            escape(t.label),
            " ".join(t.scopes),
            _day(t.expires_at),
            _day(t.revoked_at),
            _day(t.last_used_at),
        )
    out.print(table)


def _day(at: object) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at is not None else ""


@tokens_app.command("revoke")
def tokens_revoke(token_id: Annotated[int, typer.Argument(help="The token's id (tokens list).")]) -> None:
    """Revoke a token: it stops working at once."""
    from likeness import accounts

    if token_id < 1:
        usage("a token id is a positive number")
    with session() as a, a.store.transaction() as s:
        accounts.revoke_token(s, token_id, actor=ACTOR)
    out.print(f"token {token_id} revoked")
