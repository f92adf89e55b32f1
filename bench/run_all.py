"""`make bench`: every benchmark, one after the other, each rewriting its section of docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys

from bench.common import ROOT, require_eval_data

BENCHES = [
    "detection",
    "embeddings",
    "accuracy",
    "throughput",
    "vs_face_recognition",
    "catalogue_search",
    "pdq_index",
    "robustness",
    "video",
    "crawl",
    "two_pass",
    "hostile",
    "startup",
    "api",
    "evidence",
    "queue",
    "web",
]


def main() -> None:
    require_eval_data()
    for name in BENCHES:
        print(f"== bench/{name}.py", flush=True)
        subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
