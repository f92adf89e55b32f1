"""The layering of DESIGN.md, as an import-linter contract (pyproject.toml), checked on every test run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_layers_hold() -> None:
    lint = shutil.which("lint-imports") or str(Path(__import__("sys").executable).with_name("lint-imports"))
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout
