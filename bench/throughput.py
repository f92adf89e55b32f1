"""Full-analysis throughput on ~450 px thumbnails and ~1500 px originals with the configured face engine, per
stage, with the decode-only floor measured in the same run (one process, one core); the pipeline on every core
(``analyze_many`` in worker processes, no database); the whole scan (pool + database); and what the rotation
retry costs on pictures without a face.

    python -m bench.throughput

Pictures: colour photos from eval-data (deepface, fr, openface, facenet families) when present, otherwise
the package-shipped astronaut and Grace Hopper; each is re-encoded as a 1500 px and a 450 px JPEG (q90).
No-face pictures: eval-data's noface/ folder, otherwise scikit-image's coffee, cat, rocket, brick and Hubble.
"""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import EVAL, noface, table, write_section
from likeness.analyze import Pipeline
from likeness.analyze.faces import TURNS, DlibEngine, OnnxEngine, align_any_orientation, make_engine
from likeness.analyze.hashing import scan_hashes, sha256
from likeness.analyze.nsfw import NudeNetScorer
from likeness.media import decode
from likeness.settings import RuntimeSettings, Settings

FAMILIES = ("deepface", "fr-", "openface", "facenet")
SIZES = {"thumbnail ~450 px": 450, "original ~1500 px": 1500}
STAGES = ("decode", "pdq", "detect", "align", "embed", "turns", "nsfw")
FILES_PER_CALL = 8  # files per analyze_many call in the pool, as a scan batches small files
_pipeline: Pipeline | None = None


def sources() -> list[np.ndarray]:
    if (EVAL / "faces").is_dir():
        paths = sorted(p for d in (EVAL / "faces").iterdir() if d.name.startswith(FAMILIES) for p in d.glob("*.jpg"))
        return [np.asarray(Image.open(p).convert("RGB")) for p in paths[:60]]
    from skimage import data

    from likeness.services.corpus import GRACE_HOPPER

    return [data.astronaut(), np.asarray(Image.open(GRACE_HOPPER).convert("RGB"))] * 10


def faceless() -> list[np.ndarray]:
    if (EVAL / "noface").is_dir():
        return [np.asarray(Image.open(p).convert("RGB")) for p in noface()]
    from skimage import data

    return [f() for f in (data.coffee, data.chelsea, data.rocket, data.brick, data.hubble_deep_field)]


def jpeg(pixels: np.ndarray, side: int) -> bytes:
    img = Image.fromarray(pixels)
    scale = side / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def settings_one_thread() -> Settings:
    return Settings(runtime=RuntimeSettings(threads=1))


def _turns(engine: DlibEngine | OnnxEngine, pixels: np.ndarray) -> None:
    """What the rotation retry adds on a still with no upright face: the turns, until one shows a face."""
    for turns in TURNS:
        if engine.align(np.rot90(pixels, turns)):
            return


def _one(data: bytes, settings: Settings, engine: DlibEngine | OnnxEngine, nsfw: NudeNetScorer) -> list[float]:
    """Stage boundaries (perf_counter) for one file, in STAGES order."""
    marks = [time.perf_counter()]
    sha256(data)
    media = decode(data, settings.media)
    marks.append(time.perf_counter())
    scan_hashes(media.pixels)  # what a scan computes: 8 orientations (+ border-trimmed)
    marks.append(time.perf_counter())
    pixels = np.ascontiguousarray(media.pixels)
    found = engine.detector.detect(pixels)
    marks.append(time.perf_counter())
    aligned = engine.aligned(pixels, found)
    marks.append(time.perf_counter())
    engine.embed([face.chip for face in aligned])
    marks.append(time.perf_counter())
    if not aligned and settings.faces.rotations:
        _turns(engine, pixels)
    marks.append(time.perf_counter())
    if aligned:
        nsfw.score(media.pixels)
    marks.append(time.perf_counter())
    return marks


def stages(files: list[bytes], settings: Settings, engine: DlibEngine | OnnxEngine, nsfw: NudeNetScorer) -> dict:
    cost: dict[str, float] = defaultdict(float)
    for data in files:
        marks = _one(data, settings, engine, nsfw)
        for name, a, b in zip(STAGES, marks[:-1], marks[1:], strict=True):
            cost[name] += b - a
    return cost


def _init() -> None:
    global _pipeline
    import cv2

    cv2.setNumThreads(1)
    _pipeline = Pipeline(settings_one_thread())


def _analyze_many(files: list[bytes]) -> int:
    assert _pipeline is not None
    return len(_pipeline.analyze_many(files))


def pool_rate(files: list[bytes]) -> float:
    """Images/s of the pipeline alone on every core: one process per core, ``analyze_many`` over batches of files."""
    chunks = [files[i : i + FILES_PER_CALL] for i in range(0, len(files), FILES_PER_CALL)]
    spawn = get_context("spawn")  # forking a process whose ONNX Runtime threads are running can deadlock
    with ProcessPoolExecutor(os.cpu_count(), mp_context=spawn, initializer=_init) as pool:
        list(pool.map(_analyze_many, [files[:2]] * (os.cpu_count() or 1)))  # warm-up: models loaded everywhere
        started = time.perf_counter()
        done = sum(pool.map(_analyze_many, chunks))
    return done / (time.perf_counter() - started)


def whole_scan(files: list[bytes]) -> float:
    """Images/s of `scan` end to end (process pool on every core, fresh embedded PostgreSQL, no subjects)."""
    from likeness.services import scan
    from likeness.services.app import open_app

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i, data in enumerate(files):
            (folder / f"{i}.jpg").write_bytes(data)
        app = open_app(Settings(home=Path(tmp) / "home"))
        summary = scan.scan(app, [str(folder)], actor="bench")
        app.close()
    return summary.files / summary.elapsed_s


def rotation_cost(engine: DlibEngine | OnnxEngine, side: int) -> tuple[float, float, int]:
    """Milliseconds per no-face picture for the face step with the rotation retry off and on, and how many
    pictures the retry found a (false) face in."""
    pictures = [decode(jpeg(p, side), Settings().media).pixels for p in faceless()]
    off = time.perf_counter()
    for pixels in pictures:
        engine.align(pixels)
    on = time.perf_counter()
    false_faces = sum(bool(align_any_orientation(engine, pixels)[0]) for pixels in pictures)
    end = time.perf_counter()
    return 1000 * (on - off) / len(pictures), 1000 * (end - on) / len(pictures), false_faces


def main() -> None:
    settings = settings_one_thread()
    engine = make_engine(settings)
    assert isinstance(engine, DlibEngine | OnnxEngine)
    nsfw = NudeNetScorer(settings.runtime)
    pictures = sources()
    rows = []
    for label, side in SIZES.items():
        files = [jpeg(p, side) for p in pictures]
        stages(files[:3], settings, engine, nsfw)  # warm-up
        cost = stages(files, settings, engine, nsfw)
        total, n = sum(cost.values()), len(files)
        rows.append(
            [
                label,
                n,
                f"{n / total:.1f}",
                f"{pool_rate(files):.1f}",
                f"{whole_scan(files):.1f}",
                f"{n / cost['decode']:.0f}",
                *(f"{1000 * cost[s] / n:.1f}" for s in STAGES),
            ]
        )
        print(rows[-1], flush=True)
    turns = [(label, *rotation_cost(engine, side)) for label, side in SIZES.items()]
    write(settings, engine.name, rows, turns)


def write(
    settings: Settings, engine: str, rows: list[list[object]], turns: list[tuple[str, float, float, int]]
) -> None:
    cores = os.cpu_count()
    header = ["pictures", "n", "analysis img/s (1 core)", f"pipeline img/s ({cores} cores)"]
    header += [f"scan img/s ({cores} cores)", "decode-only floor img/s", *(f"{s} ms" for s in STAGES)]
    turn_rows = [[label, f"{off:.0f}", f"{on:.0f}", f"{on / off:.1f}x", found] for label, off, on, found in turns]
    write_section(
        "throughput",
        "Analysis throughput",
        f"""
Face engine `{engine}` (detector `{settings.faces.detector}`), one thread per process. One process on one core runs
every stage on each picture (SHA-256 + decode, PDQ in 8 orientations, face detection, alignment (5 landmarks and
the 150 px chip), embedding of each face found, the rotation retry where no face was found upright, NSFW where a
face was found); per-stage figures are milliseconds per picture. "Pipeline" is `Pipeline.analyze_many` in
{cores} worker processes, {FILES_PER_CALL} files a call (their faces embedded together), without a database;
"scan" is `likeness scan` end to end on the same files with {cores} worker processes and the embedded PostgreSQL
(fresh database, no subjects). The decode-only floor is how many pictures per second decoding alone would allow.
Goal: >= 25 img/s on thumbnails on 2 cores.

{table(header, rows)}

The rotation retry on pictures without a face ({len(faceless())} no-face pictures; milliseconds per picture for
the face step, upright only against upright then turned 90, 270 and 180 degrees; "found" counts pictures where a
turn produced a false face; `faces.rotations` turns the retry off):

{table(["pictures", "upright only ms", "with turns ms", "cost", "found"], turn_rows)}

MTCNN works on a copy of at most `faces.mtcnn_max_side` = {settings.faces.mtcnn_max_side} px; JPEG draft mode
(decoding at 1/2..1/8 scale) engages only for pictures at least twice `media.analysis_max_side` =
{settings.media.analysis_max_side} px, so it does not help 1500 px originals here. The scan column includes the
command's fixed costs (starting the embedded server and two workers that load the models): a few seconds, which
51 files do not amortise.
""",
    )


if __name__ == "__main__":
    main()
