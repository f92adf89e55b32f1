"""Crawl throughput against the platform simulator: items/s at a per-host rate limit, CPU per item.

    python bench/crawl.py [--items 2000]

The simulator (tests/simulator.py, a real HTTP server) runs in this process and shares the machine's cores, as
the embedded PostgreSQL does. Baseline in the same run: fetching the same listing pages and media with the same
fetcher and rate limit, without analysing or cataloguing them (the network ceiling a crawl can at best reach).
Analysis here is what a scan does minus faces and NSFW (pre-filters, SHA-256, PDQ in 8 orientations), so the
figure is the crawl machinery's; `python bench/two_pass.py` runs the whole analysis.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from tests.simulator import Platform, serve

from bench.common import table, write_section
from likeness.fetch import Fetcher
from likeness.services import crawl
from likeness.services.app import open_app
from likeness.settings import CrawlSettings, FetchSettings, Settings
from likeness.sources.civitai import CivitaiListing


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _fetch_only(base: str, fetch: FetchSettings) -> tuple[int, float]:
    """The same pages and media through the same fetcher: (media fetched, seconds)."""
    source, cursor, urls = CivitaiListing(base, "images", {}), None, []
    started = time.perf_counter()
    with Fetcher(fetch, 1 << 26) as fetcher:
        while True:
            page = source.page(fetcher, cursor)
            urls = [item.url for item in page.items]
            for _ in fetcher.get_many(urls):
                pass
            if page.cursor is None:
                break
            cursor = page.cursor
    return len(urls), time.perf_counter() - started


def run(items: int, rate: float) -> list[object]:
    platform = Platform(items=items, per_page=100, original=(512, 512))
    fetch = FetchSettings(allow_private_networks=True, rate_per_host=rate, burst_per_host=10, concurrency=16)
    with serve(platform) as base, tempfile.TemporaryDirectory() as tmp:
        _, fetch_s = _fetch_only(base, fetch)
        settings = Settings(
            home=Path(tmp),
            analyzers=["prefilter", "pdq", "provenance"],
            fetch=fetch,
            crawl=CrawlSettings(civitai_url=base, two_pass=False),
        )
        with open_app(settings) as app:
            cpu, started = _cpu(), time.perf_counter()
            summary = crawl.crawl(app, crawl.civitai(app), actor="bench")
            crawl_s, cpu_used = time.perf_counter() - started, _cpu() - cpu
    assert summary.error is None and summary.scan.files == items, summary
    return [
        f"{rate:.0f}/s",
        items,
        f"{items / fetch_s:.0f}",
        f"{items / crawl_s:.0f}",
        f"{fetch_s / crawl_s:.2f}x",
        f"{1000 * cpu_used / items:.1f} ms",
        f"{summary.bytes / 2**20:.0f} MiB",
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    rows = [run(args.items, rate) for rate in (50.0, 200.0, 1000.0)]
    body = table(
        ["rate limit per host", "items", "fetch only (items/s)", "crawl (items/s)", "crawl / fetch only",
         "CPU per item (all processes)", "fetched"],
        rows,
    )  # fmt: skip
    body += (
        "\n\nOne host serves the listing and the media, so every request counts against one bucket "
        "(burst 10). 'fetch only' walks the same pages and downloads the same 512 px pictures with the same "
        "fetcher, without analysing or cataloguing. CPU per item counts this process (crawler, simulator, "
        "fetcher thread) and the analysis workers, not the PostgreSQL server."
    )
    write_section("crawl", "Crawl throughput (simulator)", body)


if __name__ == "__main__":
    main()
