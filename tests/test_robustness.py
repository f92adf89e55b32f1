"""PDQ matching survives the transformations reposts go through, and unrelated pictures stay apart.

Floors: the package-shipped figures of bench/robustness.py (docs/benchmarks.md), rounded down. PDQ does not
survive crops (0 of 18 at 5%), so crops have no floor here; that is a documented limit, not a pass.
"""

from __future__ import annotations

import pytest
from bench.robustness import evaluate, package_sources

FLOORS = {
    "resize 50%": 0.85, "resize 25%": 0.85,
    "JPEG q30": 1.0, "JPEG q50": 1.0, "JPEG q70": 1.0, "JPEG q90": 1.0,
    "rotate 90": 0.75, "rotate 180": 0.7, "rotate 270": 0.8, "mirror": 0.75,
    "brightness +20%": 1.0, "brightness -20%": 1.0,
    "text overlay": 0.6, "border 10%": 0.85,
}  # fmt: skip


@pytest.fixture(scope="module")
def measured() -> tuple[dict[str, tuple[int, int]], int, int, int]:
    return evaluate(package_sources())


@pytest.mark.parametrize("transform", sorted(FLOORS))
def test_match_rate_floor(measured: tuple, transform: str) -> None:
    rates, _, _, usable = measured
    hit, total = rates[transform]
    assert usable >= 15 and total >= 15
    assert hit / total >= FLOORS[transform], f"{transform}: {hit}/{total}"


def test_no_false_matches_over_ten_thousand_unrelated_pairs(measured: tuple) -> None:
    _, false, pairs, _ = measured
    assert pairs >= 10_000
    assert false == 0
