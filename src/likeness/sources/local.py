"""Local folders and explicit files or URLs given on the command line, walked and read defensively.

A folder may hold anything: FIFOs (opening one for reading blocks forever), devices (/dev/zero never ends),
sockets, links to those, link loops, sub-folders we may not read, names that are not UTF-8, trees thousands of
levels deep (past the recursion limit, and past PATH_MAX). So the walk is iterative, follows links to folders
only once each (a link back to an ancestor is reported as a loop), reports every folder it cannot read, and yields
only what ``stat`` says is a regular file; everything else is reported, never opened. Files are read with
``read_file``: checked again on the open descriptor (a file swapped for a FIFO after the walk cannot block), and
never beyond the byte limit. Which files in a folder are media is decided by their content, by the scan.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from likeness.errors import LikenessError, NotRegularFile, TooLarge, Unreadable, UnsafeUrl
from likeness.sources.base import MediaRef
from likeness.text import readable_path

# Names that say "picture or video": in a folder a file is taken when its content is media or its name says so.
MEDIA_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic",
                            ".heif", ".avif", ".mp4", ".m4v", ".webm", ".mkv", ".mov"})  # fmt: skip
_URL_SCHEMES = ("http://", "https://")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # file:, ftp:, data:, javascript: ... (RFC 3986 scheme)
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}  # fmt: skip


@dataclass(frozen=True)
class Refused:
    """Something a walk met and could not take: reported with the scan's errors."""

    location: str
    error: LikenessError


def discover(targets: list[str]) -> Iterator[MediaRef | Refused]:
    """Expand paths (folders in a stable, depth-first name order) and pass http(s) URLs through.

    Locations are absolute but not resolved: a link is recorded under the name the user gave. Files found in
    folders are marked ``in_folder`` (the scan keeps only those whose content is media); a file named
    explicitly is always tried.
    """
    for target in targets:
        if target.startswith(_URL_SCHEMES):
            yield MediaRef(target)
        elif not os.path.lexists(target) and (_SCHEME.match(target) or target.startswith("//")):
            yield Refused(readable_path(target), UnsafeUrl("only http and https URLs can be fetched"))
        else:
            path = os.path.abspath(os.path.expanduser(target))
            yield from _walk(path) if _is_dir(path) else [_file_ref(path, in_folder=False)]


def _file_ref(path: str, in_folder: bool) -> MediaRef | Refused:
    """A regular file (or a link to one); anything else is refused without being opened."""
    try:
        mode = _stat(path).st_mode
    except OSError as exc:
        return Refused(readable_path(path), _os_error(exc))
    if not stat.S_ISREG(mode):
        what = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        return Refused(readable_path(path), NotRegularFile(f"{what}, not a regular file: not read"))
    return MediaRef(readable_path(path), raw_path=os.fsencode(path), in_folder=in_folder)


@dataclass(frozen=True)
class _Folder:
    path: str
    ident: tuple[int, int]
    parent: _Folder | None

    def has_ancestor(self, ident: tuple[int, int]) -> bool:
        node: _Folder | None = self
        while node is not None:
            if node.ident == ident:
                return True
            node = node.parent
        return False


def _walk(root: str) -> Iterator[MediaRef | Refused]:
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, _Folder | None]] = [(root, None)]
    while stack:
        path, parent = stack.pop()
        try:
            info = _stat(path)
        except OSError as exc:
            yield Refused(readable_path(path), _os_error(exc, "folder"))
            continue
        ident = (info.st_dev, info.st_ino)
        if ident in seen:
            if parent is not None and parent.has_ancestor(ident):
                yield Refused(
                    readable_path(path), Unreadable("a link back to a folder above it (a loop): not followed")
                )
            continue
        seen.add(ident)
        folder = _Folder(path, ident, parent)
        try:
            names = sorted(_list(path))
        except OSError as exc:
            yield Refused(readable_path(path), _os_error(exc, "folder"))
            continue
        subfolders = []
        for name in names:
            child = os.path.join(path, name)
            if _is_dir(child):
                subfolders.append(child)
            else:
                yield _file_ref(child, in_folder=True)
        stack.extend((sub, folder) for sub in reversed(subfolders))


def _is_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(_stat(path).st_mode)
    except OSError:
        return False  # a broken link or a vanished entry: _file_ref reports it


def read_file(ref: MediaRef, max_bytes: int) -> bytes:
    """The bytes of a local regular file, at most ``max_bytes``; anything else raises a LikenessError."""
    if ref.raw_path is None:
        raise UnsafeUrl(f"{ref.location}: not a local file given by the user")
    path = os.fsdecode(ref.raw_path)
    try:
        if not stat.S_ISREG(_stat(path).st_mode):  # checked before opening: a device is never opened
            raise NotRegularFile(f"{ref.location}: not a regular file: not read")
        fd = _open(path)
    except OSError as exc:
        raise _os_error(exc) from exc
    with os.fdopen(fd, "rb") as handle:
        size = os.fstat(fd)
        if not stat.S_ISREG(size.st_mode):
            raise NotRegularFile(f"{ref.location}: replaced by something that is not a regular file: not read")
        if size.st_size > max_bytes:
            raise TooLarge(f"{size.st_size} bytes is over the {max_bytes}-byte limit")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew while we read
        raise TooLarge(f"over the {max_bytes}-byte limit")
    return data


def read_head(ref: MediaRef, size: int = 64) -> bytes:
    """The first bytes of a local file, to tell media from other files without reading them whole."""
    assert ref.raw_path is not None
    try:
        fd = _open(os.fsdecode(ref.raw_path))
    except OSError as exc:
        raise _os_error(exc) from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{ref.location}: not a regular file: not read")
        return handle.read(size)


# -- paths longer than PATH_MAX: opened one folder at a time -----------------------------------------------


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    fd = _open_long(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def _list(path: str) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(path)]
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    fd = _open_long(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def _open(path: str) -> int:
    try:
        return os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    return _open_long(path, _FLAGS)


def _open_long(path: str, flags: int) -> int:
    """Open a path too long for one system call by walking its folders with ``dir_fd``."""
    parts = [p for p in path.split(os.sep) if p]
    fd = os.open(os.sep, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], flags, dir_fd=fd)
    finally:
        os.close(fd)


def _os_error(exc: OSError, what: str = "file") -> Unreadable:
    reason = exc.strerror or exc.__class__.__name__
    return Unreadable(f"{what} not readable: {reason}")
