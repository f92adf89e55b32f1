"""The audit log for the shells: verify its chain against the checkpoint, export it as JSON lines."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from likeness.errors import InvalidInput
from likeness.services.app import App
from likeness.store import audit


def verify(app: App) -> audit.Verdict:
    with app.store.transaction() as session:
        return audit.verify(session)


def export(app: App, write: Callable[[str], object], decrypt: bool = False) -> int:
    """Each row as one JSON line (MACs included, so a copy can be verified with the key); ``decrypt`` adds the
    personal parts whose owners' keys still exist. Returns how many rows were written."""
    count = 0
    with app.store.transaction() as session:
        for row in audit.export(session, decrypt):
            write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def export_file(app: App, path: Path, decrypt: bool = False) -> int:
    """Into ``path``, created readable by its owner only: an audit log says who did what, and when."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except FileNotFoundError as exc:
        raise InvalidInput(f"{path.parent}: no such folder") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        return export(app, handle.write, decrypt)
