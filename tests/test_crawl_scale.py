"""10,000 simulated CivitAI items, crawled by the CLI in a subprocess, SIGKILLed midway and resumed: every item
is catalogued exactly once, nothing committed before the kill is fetched again, and the server's own log shows
the per-host rate limit was never exceeded."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import create_engine, text

from likeness.services import crawl
from likeness.services.app import open_app
from likeness.settings import CrawlSettings, FetchSettings, ScanSettings, Settings
from tests.conftest import kill_cli_when, scalar
from tests.simulator import Platform, max_in_window, serve

ITEMS, RATE, BURST = 10_000, 400.0, 10


def test_ten_thousand_items_sigkill_and_resume(cli_env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    platform = Platform(items=ITEMS, per_page=100, original=(128, 128))
    with serve(platform) as base:
        env = {**cli_env, "LIKENESS_ANALYZERS": '["prefilter","pdq"]', "LIKENESS_CRAWL__CIVITAI_URL": base,
               "LIKENESS_CRAWL__TWO_PASS": "false", "LIKENESS_FETCH__ALLOW_PRIVATE_NETWORKS": "true",
               "LIKENESS_FETCH__RATE_PER_HOST": str(RATE), "LIKENESS_FETCH__BURST_PER_HOST": str(BURST),
               "LIKENESS_FETCH__CONCURRENCY": "16"}  # fmt: skip
        kill_cli_when(["crawl", "civitai", "--json"], env, database_url, "SELECT count(*) FROM crawl_items", 3_000)
        killed_at = time.monotonic()
        engine = create_engine(database_url)
        with engine.connect() as conn:
            committed = {f"/{k}.jpeg" for k in conn.execute(text("SELECT key FROM crawl_items")).scalars()}
        engine.dispose()
        assert 3_000 <= len(committed) < ITEMS

        settings = Settings(
            home=Path(env["LIKENESS_HOME"]),
            database_url=database_url,
            analyzers=["prefilter", "pdq"],
            scan=ScanSettings(workers=2),
            fetch=FetchSettings(allow_private_networks=True, rate_per_host=RATE, burst_per_host=BURST, concurrency=16),
            crawl=CrawlSettings(civitai_url=base, two_pass=False),
        )
        with open_app(settings) as app:
            summary = crawl.crawl(app, crawl.civitai(app), actor="test")
        assert summary.error is None and summary.stopped == "end of listing"

    assert scalar(database_url, "SELECT count(*) FROM crawl_items WHERE status = 'done'") == ITEMS
    assert scalar(database_url, "SELECT count(*) FROM media") == ITEMS
    assert scalar(database_url, "SELECT count(*) FROM sightings") == ITEMS
    refetched = [
        p for t, p in platform.log if t > killed_at and p.startswith("/img/") and p[p.rindex("/") :] in committed
    ]
    assert refetched == []
    # any two seconds hold at most a full bucket plus two seconds' refill; the server stamps arrivals, so 0.1 s is
    # allowed for its own scheduling on two busy cores.
    assert max_in_window(platform.log, 2.0) <= BURST + RATE * 2.1
