"""Shared helpers for the benchmarks: the eval data, the machine description, and docs/benchmarks.md sections.

Each benchmark owns one section of docs/benchmarks.md between ``<!-- bench:NAME -->`` markers and rewrites
only that section, with the command, machine and versions that produced it.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("LIKENESS_EVAL_DATA", ROOT.parent / "shared" / "eval-data"))
DOC = ROOT / "docs" / "benchmarks.md"
OUT = ROOT / "bench" / "out"
PACKAGES = (
    "likeness",
    "dlib-bin",
    "numpy",
    "pillow",
    "pdqhash",
    "nudenet",
    "onnxruntime",
    "pgvector",
    "psycopg",
    "face_recognition",
)


def require_eval_data() -> Path:
    if not (EVAL / "faces").is_dir():
        sys.exit(f"eval data not found at {EVAL}; set LIKENESS_EVAL_DATA or put ../shared/eval-data beside the repo")
    return EVAL


def identities(include: tuple[str, ...] = ()) -> dict[str, list[Path]]:
    """Identity -> its images, sorted; ``include`` keeps only identities with one of these prefixes."""
    root = require_eval_data() / "faces"
    found = {d.name: sorted(d.glob("*.*")) for d in sorted(root.iterdir()) if d.is_dir()}
    return {k: v for k, v in found.items() if not include or k.startswith(include)}


def distractors() -> list[Path]:
    return sorted((require_eval_data() / "distractors").glob("*/*.*"))


def noface() -> list[Path]:
    return sorted((require_eval_data() / "noface").glob("*.*"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, AttributeError):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}, Python {platform.python_version()}"


def versions() -> str:
    parts = []
    for name in PACKAGES:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(parts)


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md."""
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])
    header = (
        f"## {title}\n\n`{command}` · {datetime.now(UTC):%Y-%m-%d} · commit {git_revision()}  \n"
        f"Machine: {machine()}  \nVersions: {versions()}\n\n"
    )
    block = f"<!-- bench:{name} -->\n{header}{body.strip()}\n<!-- /bench:{name} -->"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = (
        DOC.read_text()
        if DOC.exists()
        else "# Benchmarks\n\nEvery figure here is written by a script in `bench/` (`make bench` runs them all).\n"
    )
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)
    print(block)


def table(header: list[str], rows: Iterator[list[object]] | list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def thumbnail(side: int = 450) -> bytes:
    """A JPEG of scikit-image's astronaut (one face) at most ``side`` px: the size a crawl's first pass fetches."""
    import io

    from PIL import Image
    from skimage import data

    picture = Image.fromarray(data.astronaut())
    picture.thumbnail((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()
