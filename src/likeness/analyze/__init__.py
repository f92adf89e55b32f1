"""Pixels to signals. No I/O beyond loading model files from installed packages."""

from likeness.analyze.hashing import PDQ_ALGORITHM, pdq, sha256
from likeness.analyze.pipeline import Pipeline
from likeness.analyze.types import Analysis, Face

__all__ = ["PDQ_ALGORITHM", "Analysis", "Face", "Pipeline", "pdq", "sha256"]
