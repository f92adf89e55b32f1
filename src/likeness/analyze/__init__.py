"""Pixels to signals. No I/O beyond loading model files from installed packages.

The names below load on first use (PEP 562): a command that analyses nothing (``likeness subjects list``) never
imports the decoders and networks behind them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from likeness.analyze.hashing import PDQ_ALGORITHM, pdq, sha256
    from likeness.analyze.pipeline import Pipeline
    from likeness.analyze.types import Analysis, Face

__all__ = ["PDQ_ALGORITHM", "Analysis", "Face", "Pipeline", "pdq", "sha256"]
_HOME = {"PDQ_ALGORITHM": "hashing", "pdq": "hashing", "sha256": "hashing", "Pipeline": "pipeline",
         "Analysis": "types", "Face": "types"}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
