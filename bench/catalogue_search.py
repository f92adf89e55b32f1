"""Searching the whole face catalogue for a newly enrolled subject: pgvector's exact scan vs numpy, same run.

    python bench/catalogue_search.py [N]      (default N = 1,000,000 catalogued faces)

Both are exact; the check is that each returns every planted face within the match threshold. numpy needs the
whole matrix in the process's memory (N x 128 float32) and its load time is reported too; pgvector scans the
table where it lies.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select, text

from bench.common import table, write_section
from likeness.services.app import open_app
from likeness.settings import Settings
from likeness.store.models import Face

PLANTED = 25
QUERIES = 5


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


def fill(conn, vectors: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    media_id = conn.execute(
        text("INSERT INTO media (sha256, status) VALUES ('bench', 'analyzed') RETURNING id")
    ).scalar()
    raw = conn.connection.driver_connection
    with (
        raw.cursor() as cur,
        cur.copy(
            "COPY faces (media_id, idx, x, y, w, h, landmarks, det_score, quality, embedding, engine, model) FROM STDIN"
        ) as copy,
    ):
        for i, v in enumerate(vectors):
            emb = "[" + ",".join(f"{x:.6f}" for x in v) + "]"
            copy.write_row((media_id, i, 0, 0, 1, 1, "[]", 1.0, 1.0, emb, "dlib", "bench"))
    conn.execute(text("ANALYZE faces"))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    threshold = Settings().faces.tier_low
    rng = np.random.default_rng(1)
    vectors = unit(rng.normal(size=(n, 128)))
    queries = unit(rng.normal(size=(QUERIES, 128)))
    planted: dict[int, set[int]] = {}
    for q, query in enumerate(queries):  # faces just inside the threshold, at random rows
        rows = rng.choice(n, PLANTED, replace=False)
        for r in rows:
            noise = unit(rng.normal(size=128))
            vectors[r] = unit(query + 0.25 * noise * np.sqrt(1 - threshold))
        planted[q] = {int(r) for r in rows if float(vectors[r] @ query) >= threshold}
    with tempfile.TemporaryDirectory() as tmp:
        app = open_app(Settings(home=Path(tmp)))
        with app.store.engine.begin() as conn:
            started = time.perf_counter()
            fill(conn, vectors)
            load_s = time.perf_counter() - started
        pg_times, pg_found = [], []
        with app.store.engine.connect() as conn:
            for query in queries:  # the expression likeness.match.faces.search_catalogue uses
                t = time.perf_counter()
                close = Face.embedding.cosine_distance(query) <= 1 - threshold
                rows = conn.execute(select(Face.idx).where(Face.model == "bench", close)).scalars().all()
                pg_times.append(time.perf_counter() - t)
                pg_found.append(set(rows))
            t = time.perf_counter()
            loaded = conn.execute(select(Face.embedding).where(Face.model == "bench").order_by(Face.idx)).scalars()
            matrix = np.array([np.asarray(v, np.float32) for v in loaded], np.float32)
            np_load = time.perf_counter() - t
        app.close()
    np_times, np_found = [], []
    for query in queries:
        t = time.perf_counter()
        hits = np.flatnonzero(matrix @ query >= threshold)
        np_times.append(time.perf_counter() - t)
        np_found.append({int(h) for h in hits})
    recall = lambda found: np.mean([len(found[q] & planted[q]) / len(planted[q]) for q in planted])  # noqa: E731
    pg_ms, np_ms = 1000 * np.median(pg_times), 1000 * np.median(np_times)
    rows = [
        ["pgvector exact scan (no index)", f"{pg_ms:.0f}", f"{pg_ms / np_ms:.1f}x", f"{recall(pg_found):.3f}", "none"],
        [
            "numpy exact (matrix in memory)",
            f"{np_ms:.1f}",
            "1.0x",
            f"{recall(np_found):.3f}",
            f"{np_load:.1f} s to load, {matrix.nbytes / 2**20:.0f} MiB",
        ],
    ]
    write_section(
        "catalogue_search",
        "Catalogue search for a new subject",
        f"""
{n:,} random unit 128-d embeddings in the `faces` table ({load_s:.0f} s to COPY in), {QUERIES} queries, each with
{PLANTED} faces planted just inside the match threshold ({threshold}); median query time, ratio to numpy.

{table(["method", "ms / query", "vs numpy", "recall of planted faces", "extra memory / load"], rows)}

Chosen: the pgvector exact scan (`likeness.match.faces.search_catalogue`). It is exact, needs no index build and
no process memory, and a subject is enrolled rarely; numpy is faster per query only once the matrix is loaded,
which costs more than many queries. An approximate index (HNSW) is not used: it is only acceptable where it is
measured to lose nothing within the threshold (DESIGN.md).
""",
    )


if __name__ == "__main__":
    main()
