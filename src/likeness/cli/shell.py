"""What every command shares: the consoles, and opening the app with errors reported as one line."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from likeness.errors import LikenessError
from likeness.services.app import App, open_app

err = Console(stderr=True)
out = Console()


@contextmanager
def session() -> Iterator[App]:
    """Open the app; report a LikenessError as one clear line and exit 1 instead of a traceback."""
    try:
        instance = open_app()
    except LikenessError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    try:
        yield instance
    except LikenessError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    finally:
        instance.close()
