"""Hostile input: what each class of hostile file (tests/hostile.py) costs the analysis, and what the per-file budget
costs a normal scan.

    python -m bench.hostile

Per class: each file is analysed by the product's pipeline (default settings) in a fresh process of its own, so
the wall time is that file's and the peak memory (the process's maximum resident set) is the models plus that
file. A no-op row (a 64 px picture) gives the models' own share. The budget's overhead: the same folder of normal
pictures analysed by the product's worker pool (one job at a time per worker, watched for time and memory) and by a
plain ``concurrent.futures`` process pool running the same worker code without any watching, in the same run.
"""

from __future__ import annotations

import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tests import images
from tests.hostile import corpus

from bench.common import table, write_section
from likeness.settings import ScanSettings, Settings

RUNS = 3


def _analyse_once(data: bytes, home: str) -> tuple[str, float, float]:
    """In a fresh process: (outcome, seconds, peak MiB)."""
    from likeness.services import workers

    workers.init(Settings(home=Path(home)))
    started = time.perf_counter()
    outcome = workers.analyze(data)
    elapsed = time.perf_counter() - started
    kind = getattr(outcome, "kind", "analyzed")
    return kind, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_class(home: str) -> list[list[object]]:
    """Per class: how many files, their outcomes, the slowest analysis and the highest peak."""
    ctx = get_context("spawn")
    tiny = images.encode(np.full((64, 64, 3), 90, np.uint8), "PNG")
    with tempfile.TemporaryDirectory() as folder:
        hostile = [(f.group, f.name, f.data) for f in corpus(Path(folder))]
    files = [("(models only: a 64 px picture)", "baseline", tiny), *hostile]
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        pool.submit(_analyse_once, tiny, home).result()  # builds the ONNX graphs once, before anything is timed
    found: dict[str, list[tuple[str, float, float]]] = {}
    for group, name, data in files:
        with ProcessPoolExecutor(1, mp_context=ctx) as pool:
            kind, seconds, peak = pool.submit(_analyse_once, data, home).result()
        print(group, name, kind, f"{seconds:.2f}s", f"{peak:.0f}MiB", flush=True)
        found.setdefault(group, []).append((kind, seconds, peak))
    return [_row(group, results) for group, results in found.items()]


def _row(group: str, results: list[tuple[str, float, float]]) -> list[object]:
    kinds: dict[str, int] = {}
    for kind, _, _ in results:
        kinds[kind] = kinds.get(kind, 0) + 1
    outcomes = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    slowest, highest = max(r[1] for r in results), max(r[2] for r in results)
    return [group, len(results), outcomes, f"{slowest:.2f}", f"{highest:.0f}"]


def _normal_pictures() -> list[bytes]:
    pictures = [images.astronaut(), images.grace_hopper(), *(f() for f in images.NO_FACE.values())]
    return [
        images.encode(images.resize(p, 0.5 + 0.1 * i), quality=70 + i)
        for i in range(6)
        for p in pictures
        if p.ndim == 3
    ]


def _with_pool(datas: list[bytes], settings: Settings) -> float:
    from likeness.services.pool import AnalysisPool

    with AnalysisPool(settings, settings.scan.workers) as pool:
        pool._dispatch()
        _wait_ready(pool)
        started = time.perf_counter()
        for n, data in enumerate(datas):
            pool.submit(n, data)
        done = 0
        while done < len(datas):
            done += len(pool.collect())
        return time.perf_counter() - started


def _wait_ready(pool: object) -> None:
    """Workers started and their models loaded before timing (as the plain pool's warm-up does)."""
    while not all(w.ready for w in pool._workers):  # type: ignore[attr-defined]
        pool._step()  # type: ignore[attr-defined]


def _with_executor(datas: list[bytes], settings: Settings) -> float:
    from likeness.services import workers

    ctx = get_context("spawn")
    pool = ProcessPoolExecutor(settings.scan.workers, mp_context=ctx, initializer=workers.init, initargs=(settings,))
    with pool as ex:
        list(ex.map(_noop, range(settings.scan.workers * 4)))  # started and initialised before timing
        started = time.perf_counter()
        list(ex.map(workers.analyze, datas))
        return time.perf_counter() - started


def _noop(n: int) -> int:
    time.sleep(0.5)
    return n


def overhead(home: str) -> tuple[int, float, float]:
    settings = Settings(home=Path(home), scan=ScanSettings(workers=2))
    datas = _normal_pictures()
    pool = min(_with_pool(datas, settings) for _ in range(RUNS))
    plain = min(_with_executor(datas, settings) for _ in range(RUNS))
    return len(datas), pool, plain


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        rows = per_class(home)
        files, pool, plain = overhead(home)
    limits = Settings()
    slowest = max(float(str(row[3])) for row in rows[1:])
    write_section(
        "hostile",
        "Hostile input: cost per class, and the per-file budget's overhead",
        f"""
Each file of tests/hostile.py's corpus analysed alone by the product's pipeline (default settings) in a fresh
process: per class, the files' outcomes, the slowest analysis and the highest peak resident memory of a process
(models included; the first row is the models alone). The slowest hostile file took {slowest:.2f} s: each is refused
from what it declares or analysed normally, and the budget is the backstop. Budget per file:
{limits.scan.file_seconds:g} s and {limits.scan.file_memory_mib} MiB
(`LIKENESS_SCAN__FILE_SECONDS`, `LIKENESS_SCAN__FILE_MEMORY_MIB`).

{table(["class", "files", "outcomes", "slowest s", "peak MiB"], rows)}

**The budget's overhead**: {files} normal pictures (astronaut, Grace Hopper, scikit-image photos at six sizes)
analysed with 2 workers, best of {RUNS}: the product's watched pool {pool:.2f} s, a plain process pool without any
watching {plain:.2f} s: **{pool / plain:.2f}x**.
""",
    )


if __name__ == "__main__":
    main()
