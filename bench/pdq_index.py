"""The exact PDQ multi-index vs faiss IndexBinaryFlat (what Meta's HMA uses), same hashes, same queries.

    python bench/pdq_index.py [N ...]        (default: 1000000 10000000; needs: pip install faiss-cpu)

Each bank is random 256-bit hashes with 10% in clusters of near-duplicates. Queries: half are stored hashes
with 0..31 bits flipped (they have neighbours), half random (they have none). Both run on one thread. Recall is
against faiss's flat scan, which is brute force and so exact; distance threshold 31 (faiss: radius 32, as its
binary range search is strict).
"""

from __future__ import annotations

import sys
import time

import faiss
import numpy as np

from bench.common import table, write_section
from likeness.analyze.pdq_index import PdqIndex

QUERIES = 200
ADDS = 1_000


def bank(n: int, rng: np.random.Generator) -> np.ndarray:
    words = rng.integers(0, 2**64, size=(n, 4), dtype=np.uint64)
    clustered = n // 10
    bits = np.unpackbits(words[:clustered].view(np.uint8), axis=1)
    parents = rng.integers(0, clustered // 10, size=clustered)
    flips = rng.random((clustered, 256)) < rng.integers(0, 24, size=(clustered, 1)) / 256
    bits = bits[parents] ^ flips
    words[:clustered] = np.packbits(bits, axis=1).view(np.uint64)
    return words


def queries(words: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    near = words[rng.integers(0, len(words), QUERIES // 2)].copy()
    bits = np.unpackbits(near.view(np.uint8), axis=1)
    for row, k in zip(bits, rng.integers(0, 32, QUERIES // 2), strict=True):
        row[rng.choice(256, k, replace=False)] ^= 1
    near = np.packbits(bits, axis=1).view(np.uint64)
    return np.concatenate([near, rng.integers(0, 2**64, size=(QUERIES // 2, 4), dtype=np.uint64)])


def measure(n: int) -> list[list[object]]:
    rng = np.random.default_rng(n)
    words = bank(n, rng)
    qs = queries(words, rng)
    faiss.omp_set_num_threads(1)
    t = time.perf_counter()
    flat = faiss.IndexBinaryFlat(256)
    flat.add(words.view(np.uint8))
    flat_build = time.perf_counter() - t
    t = time.perf_counter()
    lims, _, ids = flat.range_search(qs.view(np.uint8), 32)
    flat_rate = QUERIES / (time.perf_counter() - t)
    truth = [set(ids[lims[i] : lims[i + 1]].tolist()) for i in range(QUERIES)]

    t = time.perf_counter()
    index = PdqIndex(31)
    index.build(np.arange(n, dtype=np.int64), words)
    mih_build = time.perf_counter() - t
    t = time.perf_counter()
    found = [{i for i, _ in index.query(q.tobytes())} for q in qs]
    mih_rate = QUERIES / (time.perf_counter() - t)
    extra = rng.integers(0, 2**64, size=(ADDS, 4), dtype=np.uint64)
    t = time.perf_counter()
    for i, w in enumerate(extra):
        index.add(n + i, w.tobytes())
    add_us = 1e6 * (time.perf_counter() - t) / ADDS

    recall = sum(len(f & t) for f, t in zip(found, truth, strict=True)) / max(1, sum(len(t) for t in truth))
    exact = all(f == t for f, t in zip(found, truth, strict=True))
    neighbours = sum(len(t) for t in truth)
    return [
        [
            f"{n:,}",
            "faiss IndexBinaryFlat",
            f"{flat_rate:,.0f}",
            "1.0x",
            "1.000 (reference)",
            f"{flat.ntotal * 32 / 2**20:,.0f}",
            f"{flat_build:.1f}",
            "n/a (append)",
        ],
        [
            f"{n:,}",
            "likeness PdqIndex (MIH 16x16)",
            f"{mih_rate:,.0f}",
            f"{mih_rate / flat_rate:.0f}x",
            f"{recall:.3f}{' (identical sets)' if exact else ''}",
            f"{index.nbytes / 2**20:,.0f}",
            f"{mih_build:.1f}",
            f"{add_us:.0f} µs",
        ],
        [f"{n:,}", f"({neighbours} neighbours within 31 over {QUERIES} queries)", "", "", "", "", "", ""],
    ]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000]
    rows = []
    for n in sizes:
        rows += measure(n)
        print(rows[-3:], flush=True)
    write_section(
        "pdq_index",
        "PDQ index vs faiss IndexBinaryFlat",
        f"""
Random 256-bit banks with 10% near-duplicate clusters; {QUERIES} queries (half near a stored hash, half random),
distance <= 31, one thread each. Lookups/s over the same queries in the same run; the ratio is to faiss.
Incremental add: mean time to add one hash to the built index ({ADDS:,} adds; no rebuild).

{table(["hashes", "index", "lookups/s (1 thread)", "vs faiss", "recall", "memory MiB", "build s", "add one"], rows)}
""",
    )


if __name__ == "__main__":
    main()
