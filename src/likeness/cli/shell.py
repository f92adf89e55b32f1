"""What every command shares: the consoles, the exit codes, and opening the app with errors reported as one line.

Exit codes (documented in the README):
    0  everything asked for was done
    1  some targets failed (files that could not be analysed, a crawl that stopped on an error, ...)
    2  usage error: a bad option or argument, a name that does not exist, malformed input
    3  configuration error: settings, keys, database or environment (caught when the app is wired)

Modules here import only Typer and Rich at load time; services are imported inside the commands, so that
``likeness --help`` and commands that analyse nothing start fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from likeness.errors import ConfigurationError, InvalidInput, LikenessError, NotFound

if TYPE_CHECKING:
    from likeness.services.app import App

OK, FAILED, USAGE, CONFIGURATION = 0, 1, 2, 3

err = Console(stderr=True)
out = Console()


class Format(StrEnum):
    table = "table"
    json = "json"


def exit_code(exc: LikenessError) -> int:
    if isinstance(exc, ConfigurationError):
        return CONFIGURATION
    if isinstance(exc, InvalidInput | NotFound):
        return USAGE
    return FAILED


def fail(exc: LikenessError | OSError) -> NoReturn:
    """One line on stderr, never a traceback, and the exit code that says what kind of failure it was."""
    message = exc.strerror and f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
    line = str(message).splitlines()[0] if message else exc.__class__.__name__
    err.print(f"[red]error:[/red] {escape(line)}", soft_wrap=True)
    raise typer.Exit(exit_code(exc) if isinstance(exc, LikenessError) else FAILED)


def usage(message: str) -> NoReturn:
    fail(InvalidInput(message))


@contextmanager
def session() -> Iterator[App]:
    """Open the app (settings checked, store opened) and report any LikenessError as one line."""
    from likeness.services.app import open_app

    try:
        instance = open_app()
    except (LikenessError, OSError) as exc:
        fail(exc)
    try:
        yield instance
    except (LikenessError, OSError) as exc:
        fail(exc)
    finally:
        instance.close()


def typer_app(help: str) -> typer.Typer:
    """A command group; locals are never shown in a traceback (they may hold keys or names)."""
    return typer.Typer(help=help, no_args_is_help=True, pretty_exceptions_show_locals=False)
