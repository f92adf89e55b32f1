"""``analyze(bytes) -> Analysis``: decode with limits, then the configured analysers in order.

``analyze_many`` does the same for a batch of files with one difference: the face embedding network, the costly
part, runs once over the chips of every file (every frame of a video included), in batches of
``faces.batch_size``. The analysers before ``faces`` and face alignment run file by file; then the one embedding;
then, file by file, the rest of ``faces`` (one face per person across frames) and the analysers after it (NSFW
needs the faces). One file's failure is that file's result, never the batch's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import numpy as np

from likeness.analyze import faces, hashing, nsfw, prefilter, provenance  # noqa: F401  (registers plugins)
from likeness.analyze.faces import EMBEDDING_DIM, FaceAnalyzer, PendingFaces
from likeness.analyze.plugins import Analyzer, build, check_analyzers
from likeness.analyze.types import Analysis
from likeness.errors import AnalysisFailed, LikenessError
from likeness.media import Media, decode
from likeness.settings import Settings

T = TypeVar("T")
Outcome = Analysis | LikenessError


@dataclass
class _Started:
    """A file between its per-file work and the batched embedding."""

    media: Media
    result: Analysis
    aligned: bool = False  # face analysis ran (not configured, or skipped by a pre-filter, otherwise)
    pending: PendingFaces = field(default_factory=PendingFaces)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, EMBEDDING_DIM), np.float32))


def _guarded(step: Callable[[], T]) -> T | LikenessError:
    """The step's value, or its failure as a value: a ``LikenessError`` as it is, any other exception (an analyser
    bug, a model failing on odd pixels) as ``AnalysisFailed``. ``MemoryError`` goes up: the worker turns it into a
    budget error for the file it was on."""
    try:
        return step()
    except MemoryError:
        raise
    except LikenessError as exc:
        return exc
    except Exception as exc:
        return AnalysisFailed(f"{exc.__class__.__name__}: {exc}")


class Pipeline:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.analyzers: list[Analyzer] = build(settings)
        self._faces: FaceAnalyzer | None = None
        self._split = len(self.analyzers)  # analysers before it run per file first, the rest after the embedding
        for i, analyzer in enumerate(self.analyzers):
            if isinstance(analyzer, FaceAnalyzer):
                self._faces, self._split = analyzer, i
                break

    def analyze(self, data: bytes) -> Analysis:
        """One file. Raises a ``MediaError`` subclass when the bytes cannot be decoded within the limits."""
        item = self._first(data)
        item.vectors = self._embed(item.pending.chips)
        return self._rest(item)

    def analyze_many(self, items: Sequence[bytes], started: Callable[[int], None] | None = None) -> list[Outcome]:
        """Each file's ``Analysis`` or error, in the order given.

        ``started(i)`` is called before file ``i``'s per-file work (decode, pre-filters, hashes, face detection and
        alignment), for each file in order; then ``started(-1)`` once, before the one embedding of every file's
        face chips (also when there are none); then each file's remaining work runs without further calls."""
        firsts: list[_Started | LikenessError] = []
        for i, data in enumerate(items):
            if started is not None:
                started(i)
            firsts.append(_guarded(partial(self._first, data)))
        if started is not None:
            started(-1)
        return [
            _guarded(partial(self._rest, item)) if isinstance(item, _Started) else item
            for item in self._embed_all(firsts)
        ]

    def _first(self, data: bytes) -> _Started:
        media = decode(data, self.settings.media)
        result = Analysis(
            media.width, media.height, media.format, media.frame_count, media.duration_s, warnings=list(media.warnings)
        )
        item = _Started(media, result)
        for analyzer in self.analyzers[: self._split]:
            if result.skipped:
                return item
            analyzer(media, result)
        if self._faces is not None and not result.skipped:
            item.pending, item.aligned = self._faces.align(media, result), True
        return item

    def _embed(self, chips: list[np.ndarray]) -> np.ndarray:
        if not chips or self._faces is None:
            return np.zeros((0, EMBEDDING_DIM), np.float32)
        return self._faces.embed(chips)

    def _embed_all(self, items: list[_Started | LikenessError]) -> list[_Started | LikenessError]:
        """One pass over every file's chips; if it fails, file by file, so that only the file at fault fails."""
        started = [item for item in items if isinstance(item, _Started)]
        if not started:
            return items
        vectors = _guarded(partial(self._embed, [chip for item in started for chip in item.pending.chips]))
        if isinstance(vectors, LikenessError):
            return [self._embed_one(item) if isinstance(item, _Started) else item for item in items]
        ends = np.cumsum([len(item.pending.found) for item in started])
        for item, part in zip(started, np.split(vectors, ends[:-1]), strict=True):
            item.vectors = part
        return items

    def _embed_one(self, item: _Started) -> _Started | LikenessError:
        vectors = _guarded(partial(self._embed, item.pending.chips))
        if isinstance(vectors, LikenessError):
            return vectors
        item.vectors = vectors
        return item

    def _rest(self, item: _Started) -> Analysis:
        media, result = item.media, item.result
        if item.aligned and self._faces is not None:
            self._faces.finish(media, result, item.pending, item.vectors)
        for analyzer in self.analyzers[self._split + 1 :]:
            if result.skipped:
                break
            analyzer(media, result)
        return result


def check(settings: Settings) -> None:
    """Every name the analysis settings use (analysers, face engine and detector, NSFW engine, device) is known:
    a ``ConfigurationError`` before any file is read, not an error on every file. Loads no model."""
    check_analyzers(settings)
    faces.check_names(settings)
    nsfw.check_name(settings.nsfw)
