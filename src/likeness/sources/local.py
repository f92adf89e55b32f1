"""Local folders and explicit files or URLs given on the command line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from likeness.sources.base import MediaRef

# Inside folders, only files that look like media are picked up; a file named explicitly is always tried.
MEDIA_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".mp4", ".webm", ".mov"}
)


def discover(targets: list[str]) -> Iterator[MediaRef]:
    """Expand paths (folders recursively, in a stable order) and pass URLs through.

    Locations are absolute but not resolved: a symlink is recorded under the name the user gave.
    """
    for target in targets:
        if target.startswith(("http://", "https://")):
            yield MediaRef(target)
            continue
        path = Path(target).expanduser()
        if path.is_dir():
            yield from _walk(path)
        else:
            yield MediaRef(os.path.abspath(path))


def _walk(root: Path) -> Iterator[MediaRef]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if Path(name).suffix.lower() in MEDIA_SUFFIXES:
                yield MediaRef(os.path.abspath(Path(folder) / name))
