"""Embeddings of every eval-data identity and distractor photo through the product's own decode and face
engine, computed once in a process pool and cached in bench/out/ (keyed by the face settings); and, run as a
script, the cost of one embedding on dlib-bin against the same network on ONNX Runtime, in the same run.

    python -m bench.embeddings

Chips: faces of eval-data photos (or the package-shipped pictures without it), aligned as the product does.
Both runtimes get one thread, as a scan worker has; dlib-bin embeds one chip at a time (its batches cost the same
per face), ONNX Runtime in batches of 1, 8 and 32. Each figure is the best of three passes (others may share the
machine).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import EVAL, OUT, distractors, identities, table, write_section
from likeness.analyze.faces import DlibEngine, FaceEngine, OnnxEngine, make_engine
from likeness.errors import MediaError
from likeness.media import decode
from likeness.settings import RuntimeSettings, Settings

_engine: FaceEngine | None = None
BATCHES = (1, 8, 32)
DLIB_CHIPS = 16  # dlib-bin costs ~0.1 s a face: a smaller sample is enough
ONNX_CHIPS = 64


@dataclass
class Embedded:
    paths: list[str]
    labels: list[str]  # identity, or "distractor:<name>"
    vectors: np.ndarray  # (n, 128); rows of NaN where no face was found
    found: np.ndarray  # bool (n,)


def _settings() -> Settings:
    """The product's defaults, one thread per worker process."""
    return Settings(runtime=RuntimeSettings(threads=1))


def _init() -> None:
    global _engine
    _engine = make_engine(_settings())


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
    faces = Settings().faces.model_dump(exclude={"engine", "batch_size"})  # engines with the same vectors share it
    key = hashlib.sha256(json.dumps([faces, [i[0] for i in items]]).encode()).hexdigest()[:12]
    cache = OUT / f"embeddings-{key}.npz"
    if cache.exists():
        data = np.load(cache, allow_pickle=False)
        return Embedded(list(data["paths"]), list(data["labels"]), data["vectors"], data["found"])
    make_engine(_settings())  # builds and caches the ONNX graph once, before the workers look for it
    with ProcessPoolExecutor(workers, initializer=_init) as pool:
        results = list(pool.map(_embed, [p for p, _ in items], chunksize=4))
    found = np.array([r is not None for r in results])
    vectors = np.array([r if r is not None else [np.nan] * 128 for r in results], dtype=np.float32)
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(cache, paths=[p for p, _ in items], labels=[lab for _, lab in items], vectors=vectors, found=found)
    return Embedded([p for p, _ in items], [lab for _, lab in items], vectors, found)


# -- the cost of an embedding -------------------------------------------------------------------------------------


def pictures() -> list[np.ndarray]:
    """Colour photos of eval-data (at most 640 px, as analysis sees them), else the package-shipped ones."""
    if (EVAL / "faces").is_dir():
        paths = [files[0] for files in identities(("deepface", "fr-", "openface", "facenet")).values()]
        found = []
        for path in paths:
            img = Image.open(path).convert("RGB")
            img.thumbnail((640, 640))
            found.append(np.asarray(img))
        return found
    from skimage import data

    from likeness.services.corpus import GRACE_HOPPER, resize

    hopper = np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))
    return [data.astronaut(), hopper, resize(hopper, 0.6), resize(data.astronaut(), 1.5)]


def chips(engine: FaceEngine) -> list[np.ndarray]:
    found = [face.chip for pixels in pictures() for face in engine.align(pixels)]
    if not found:
        raise SystemExit("no faces found to embed")
    return found


def best_ms_per_face(embed: Callable[[Sequence[np.ndarray]], np.ndarray], batch: list[np.ndarray]) -> float:
    embed(batch[:2])  # warm-up: first runs allocate
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        embed(batch)
        passes.append(time.perf_counter() - started)
    return 1000 * min(passes) / len(batch)


def main() -> None:
    settings = _settings()
    dlib = DlibEngine(settings.faces.model_copy(update={"batch_size": 1}))
    faces = chips(dlib)
    sample = [faces[i % len(faces)] for i in range(ONNX_CHIPS)]  # repeated if there are fewer faces
    dlib_ms = best_ms_per_face(dlib.embed, sample[:DLIB_CHIPS])
    rows: list[list[object]] = [["dlib-bin", 1, f"{dlib_ms:.1f}", "1.0x"]]
    agree = 0.0
    for size in BATCHES:
        batched = settings.faces.model_copy(update={"batch_size": size})
        onnx = OnnxEngine(batched, settings.runtime, settings.home / "models", dlib.detector)
        ms = best_ms_per_face(onnx.embed, sample)
        rows.append(["onnx (ONNX Runtime)", size, f"{ms:.2f}", f"{dlib_ms / ms:.1f}x"])
        agree = max(agree, float(np.abs(onnx.embed(sample[:DLIB_CHIPS]) - dlib.embed(sample[:DLIB_CHIPS])).max()))
        print(rows[-1], flush=True)
    write_section(
        "embeddings",
        "Embedding cost: dlib-bin against ONNX Runtime",
        f"""
Milliseconds per face for the 128-d embedding of aligned 150 px chips ({min(len(faces), ONNX_CHIPS)} distinct
faces), one thread, best of three passes, in the same run; the ratio is dlib-bin's time over each row's. Both run
dlib's own network (`dlib_face_recognition_resnet_model_v1`): the `onnx` engine rebuilds it from the same `.dat`
file as an ONNX graph (`analyze/dlib_onnx.py`). Largest difference between the two runtimes' unit vectors on
{DLIB_CHIPS} faces: {agree:.1e} (the test holds it under 1e-5). Goal: <= 5 ms a face and >= 15x.

{table(["runtime", "batch", "ms per face", "vs dlib-bin"], rows)}

`faces.batch_size` = {Settings().faces.batch_size} chips per network call (a scan batches the faces of all frames
of a file and of several files together).
""",
    )


if __name__ == "__main__":
    main()
