"""The whole hostile corpus (tests/hostile.py) plus special files, scanned as people do (the CLI in a subprocess):
every file ends as its recorded error or a normal analysis, the scan completes, and the scan's whole process tree
stays under 1.5 GiB."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from likeness.errors import UnsupportedFormat
from likeness.sources.local import MEDIA_SUFFIXES
from tests import images
from tests.hostile import ANALYZED, corpus

pytestmark = pytest.mark.timeout(600)
TREE_LIMIT_MIB = 1536


def _tree_rss_mib(root: psutil.Process) -> float:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def _watch(proc: subprocess.Popen[str], peak: list[float]) -> None:
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak[0] = max(peak[0], _tree_rss_mib(root))
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)


def test_hostile_corpus_scan_completes_within_budget(cli_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    files = corpus(folder)
    images.write(folder / "normal_face.jpg", images.astronaut_face_crop())
    os.mkfifo(folder / "a_fifo.jpg")
    (folder / "a_device.jpg").symlink_to("/dev/zero")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(folder / "a_socket.png"))
    code = "import sys; from likeness.cli.main import app; sys.exit(app())"
    peak = [0.0]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "scan", "--json", str(folder)],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        watcher = threading.Thread(target=_watch, args=(proc, peak), daemon=True)
        watcher.start()
        stdout, stderr = proc.communicate(timeout=540)
        watcher.join(timeout=5)
    finally:
        server.close()
    assert proc.returncode == 1, stderr  # some files failed: said so
    summary = json.loads(stdout)
    errors = {Path(e["location"]).name: e["kind"] for e in summary["errors"]}
    for special in ("a_fifo.jpg", "a_device.jpg", "a_socket.png"):
        assert errors.pop(special) == "not_regular_file"
    skipped = [f for f in files if f.expected == UnsupportedFormat.kind and f.suffix not in MEDIA_SUFFIXES]
    for item in files:
        expected = ANALYZED if item in skipped else item.expected  # in a folder: not media, left alone
        got = errors.get(item.filename, ANALYZED)
        assert got == expected, (item.name, got, expected)
    assert summary["not_media"] == len(skipped)
    assert peak[0] < TREE_LIMIT_MIB, f"the scan's process tree peaked at {peak[0]:.0f} MiB"
