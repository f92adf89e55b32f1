"""The PDQ multi-index is exact: for random banks it returns exactly what brute force returns."""

from __future__ import annotations

import numpy as np
import pytest

from likeness.analyze.pdq_index import PdqIndex, hamming


def _flip(words: np.ndarray, bits: int, rng: np.random.Generator) -> np.ndarray:
    unpacked = np.unpackbits(words.view(np.uint8))
    unpacked[rng.choice(256, bits, replace=False)] ^= 1
    return np.packbits(unpacked).view(np.uint64)


def _brute(ids: np.ndarray, words: np.ndarray, query: np.ndarray, limit: int) -> list[tuple[int, int]]:
    d = hamming(words, query)
    return sorted(zip(ids[d <= limit].tolist(), d[d <= limit].tolist(), strict=True), key=lambda x: (x[1], x[0]))


@pytest.fixture(scope="module")
def bank() -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(42)
    words = rng.integers(0, 2**64, size=(30_000, 4), dtype=np.uint64)
    # clusters of near-duplicates, so queries have many neighbours at every distance up to and past 31
    for i in range(0, 3_000, 10):
        for j in range(1, 10):
            words[i + j] = _flip(words[i].copy(), int(rng.integers(0, 45)), rng)
    return rng.permutation(len(words)).astype(np.int64) * 3 + 7, words, rng


@pytest.mark.parametrize("limit", [0, 10, 31])
def test_every_hash_within_the_distance_is_found(bank: tuple, limit: int) -> None:
    ids, words, rng = bank
    index = PdqIndex(31)
    index.build(ids, words)
    for _ in range(150):
        query = _flip(words[int(rng.integers(0, 3_000))].copy(), int(rng.integers(0, 40)), rng)
        assert index.query(query.tobytes(), limit) == _brute(ids, words, query, limit)


def test_boundary_distances_31_in_32_out() -> None:
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**64, size=4, dtype=np.uint64)
    near, far = _flip(base.copy(), 31, rng), _flip(base.copy(), 32, rng)
    index = PdqIndex(31)
    index.build(np.array([1, 2]), np.stack([near, far]))
    assert index.query(base.tobytes()) == [(1, 31)]


def test_incremental_add_remove_and_fold_stay_exact(bank: tuple) -> None:
    ids, words, rng = bank
    index = PdqIndex(31, tail_limit=500)
    index.build(ids[:20_000], words[:20_000])
    for i in range(20_000, 21_200):  # crosses the tail limit twice: two folds
        index.add(int(ids[i]), words[i].tobytes())
    removed = ids[:3_000:7]
    for hash_id in removed:
        assert index.remove(int(hash_id))
    assert not index.remove(-5)
    keep = np.isin(ids[:21_200], removed, invert=True)
    live_ids, live_words = ids[:21_200][keep], words[:21_200][keep]
    assert len(index) == len(live_ids)
    for _ in range(150):
        query = _flip(words[int(rng.integers(0, 3_000))].copy(), int(rng.integers(0, 35)), rng)
        assert index.query(query.tobytes()) == _brute(live_ids, live_words, query, 31)


def test_readding_an_id_replaces_its_hash() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 2**64, size=(2, 4), dtype=np.uint64)
    index = PdqIndex(31)
    index.build(np.array([1]), a[None, :])
    index.add(1, b.tobytes())
    assert index.query(a.tobytes()) == [] and index.query(b.tobytes()) == [(1, 0)]
    with pytest.raises(ValueError, match="duplicate ids"):
        index.build(np.array([4, 4]), np.stack([a, b]))
