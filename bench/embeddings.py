"""Embeddings of every eval-data identity and distractor photo through the product's own decode and face
engine, computed once in a process pool and cached in bench/out/ (keyed by the face settings)."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import OUT, distractors, identities
from likeness.analyze.faces import DlibEngine
from likeness.errors import MediaError
from likeness.media import decode
from likeness.settings import Settings

_engine: DlibEngine | None = None


@dataclass
class Embedded:
    paths: list[str]
    labels: list[str]  # identity, or "distractor:<name>"
    vectors: np.ndarray  # (n, 128); rows of NaN where no face was found
    found: np.ndarray  # bool (n,)


def _init() -> None:
    global _engine
    _engine = DlibEngine(Settings().faces)


def _embed(path: str) -> list[float] | None:
    assert _engine is not None
    try:
        media = decode(Path(path).read_bytes(), Settings().media)
    except MediaError:
        return None
    faces = _engine.faces(media.pixels)
    if not faces:
        return None
    return max(faces, key=lambda f: f.box[2] * f.box[3]).embedding.tolist()


def load(workers: int = 2) -> Embedded:
    people = identities()
    items = [(str(p), ident) for ident, files in people.items() for p in files]
    items += [(str(p), f"distractor:{p.parent.name}") for p in distractors()]
    key = hashlib.sha256(json.dumps([Settings().faces.model_dump(), [i[0] for i in items]]).encode()).hexdigest()[:12]
    cache = OUT / f"embeddings-{key}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        return Embedded(list(data["paths"]), list(data["labels"]), data["vectors"], data["found"])
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        results = list(pool.map(_embed, [p for p, _ in items], chunksize=4))
    found = np.array([r is not None for r in results])
    vectors = np.array([r if r is not None else [np.nan] * 128 for r in results], dtype=np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=[p for p, _ in items], labels=[lab for _, lab in items], vectors=vectors, found=found)
    return Embedded([p for p, _ in items], [lab for _, lab in items], vectors, found)
