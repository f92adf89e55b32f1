"""The analysis worker process: builds the analysers once, then turns bytes into an Analysis or an error."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from likeness.analyze import Analysis, Pipeline
from likeness.errors import AnalysisFailed, LikenessError
from likeness.settings import Settings

_pipeline: Pipeline | None = None


def init(settings: Settings) -> None:
    """One worker per core, so each worker keeps to one thread (ONNX Runtime and OpenCV default to all cores)."""
    global _pipeline
    import cv2

    cv2.setNumThreads(1)
    _pipeline = Pipeline(settings.model_copy(update={"runtime": settings.runtime.model_copy(update={"threads": 1})}))


def analyze(data: bytes) -> Analysis | LikenessError:
    """Errors come back as values: they are recorded against the file, and the scan goes on."""
    assert _pipeline is not None, "worker not initialised"
    try:
        return _pipeline.analyze(data)
    except LikenessError as exc:
        return exc
    except MemoryError:
        raise  # the pool turns it into a budget error and replaces this worker
    except Exception as exc:  # an analyser bug or a model failing on odd pixels: recorded, never silent
        return AnalysisFailed(f"{exc.__class__.__name__}: {exc}")


def analyze_many(datas: Sequence[bytes], started: Callable[[int], None]) -> list[Analysis | LikenessError]:
    results = []
    for n, data in enumerate(datas):
        started(n)
        results.append(analyze(data))
    return results
