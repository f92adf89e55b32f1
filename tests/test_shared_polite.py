"""Politeness shared through the store (fetch/shared.py): two crawling OS processes against the platform simulator
never exceed the host's rate together, a Retry-After one of them is told pauses the other, and a circuit one of
them opens is open for the other. Each process is this file run as a worker (``main`` below): a Fetcher with the
shared politeness, started together on a line on stdin so that their requests overlap."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from likeness.errors import LikenessError
from likeness.fetch import Fetcher
from likeness.fetch.shared import SharedPoliteness
from likeness.services import crawl
from likeness.services.app import open_app
from likeness.settings import CrawlSettings, FetchSettings, PoliteSettings, ScanSettings, Settings
from tests.simulator import Faults, Platform, max_in_window, serve

ROOT = Path(__file__).resolve().parents[1]
RATE, BURST = 20.0, 4


def _fetch_settings(**kw: object) -> FetchSettings:
    base: dict[str, object] = {"allow_private_networks": True, "rate_per_host": RATE, "burst_per_host": BURST,
                               "concurrency": 8, "retries": 1, "backoff_s": 0.01}  # fmt: skip
    return FetchSettings(**{**base, **kw})


def main() -> None:
    """A worker: ``argv`` = database URL, fetch settings (JSON), URLs (JSON). Says "ready", fetches once stdin
    gives a line, then prints what each URL gave ("ok" or the error's class) as JSON."""
    url, given, urls = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    settings = _fetch_settings(**given)
    polite = SharedPoliteness(url, settings, PoliteSettings())
    outcomes = [""] * len(urls)
    with Fetcher(settings, 1 << 20, politeness=polite) as fetcher:
        print("ready", flush=True)
        sys.stdin.readline()
        for n, got in fetcher.get_many(urls):
            outcomes[n] = type(got).__name__ if isinstance(got, LikenessError) else "ok"
    print(json.dumps(outcomes), flush=True)


def _start(database_url: str, urls: list[str], **settings: object) -> subprocess.Popen[str]:
    code = "from tests.test_shared_polite import main; main()"
    args = [sys.executable, "-c", code, database_url, json.dumps(settings), json.dumps(urls)]
    proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _go(*procs: subprocess.Popen[str]) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


def _outcomes(proc: subprocess.Popen[str]) -> list[str]:
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return list(json.loads(out.strip().splitlines()[-1]))


def _images(base: str, items: range) -> list[str]:
    return [f"{base}/img/{i:08x}-0000/original=true/{i}.jpeg" for i in items]


def test_two_processes_never_exceed_the_hosts_rate_together(database_url: str) -> None:
    platform = Platform(items=200, original=(32, 32))
    with serve(platform) as base:
        first, second = (
            _start(database_url, _images(base, range(1, 61))),
            _start(database_url, _images(base, range(61, 121))),
        )
        _go(first, second)
        assert _outcomes(first) == ["ok"] * 60 and _outcomes(second) == ["ok"] * 60
    media = [(t, int(p.rsplit("/", 1)[1].split(".")[0])) for t, p in platform.log if p.startswith("/img/")]
    assert len(media) == 120
    # the two processes' requests interleave (or the test would show nothing about sharing) ...
    first_times, second_times = [t for t, i in media if i <= 60], [t for t, i in media if i > 60]
    assert min(second_times) < max(first_times) and min(first_times) < max(second_times)
    # ... and any two seconds hold at most one full bucket plus two seconds' refill (alone, each process would
    # take that much: both together, unshared, twice it: 88 and more, 99 seen here). A second's refill more
    # allows for what happens between a token and the server's stamp: a busy machine runs a process late at
    # times (45 to 48 seen here, against 44 for perfectly even sending).
    assert max_in_window(platform.log, 2.0) <= BURST + RATE * 3.0


def test_a_retry_after_told_to_one_process_pauses_the_other(database_url: str) -> None:
    platform = Platform(items=20, original=(32, 32), faults=Faults(status_every=1, status=429, retry_after="3"))
    with serve(platform) as base:
        waiting = _start(database_url, _images(base, range(1, 4)))
        told = _start(database_url, [f"{base}/api/v1/images"])
        _go(told)
        assert _outcomes(told) == ["TransientFetchError"]  # one try (retries=1): the 429 is all it got
        (asked_at,) = [t for t, p in platform.log if p.startswith("/api/")]
        _go(waiting)
        assert _outcomes(waiting) == ["ok"] * 3
    # the other process sent nothing before the pause was over (the pause began after the 429 arrived)
    others = [t for t, p in platform.log if p.startswith("/img/")]
    assert len(others) == 3 and min(others) >= asked_at + 3.0 - 0.05  # 50 ms for two clocks


def test_a_circuit_opened_by_one_process_is_open_for_the_other(database_url: str) -> None:
    platform = Platform(items=20, original=(32, 32), faults=Faults(status_every=1, status=503, retry_after="0"))
    with serve(platform) as base:
        failing = _start(database_url, [f"{base}/api/v1/images"], retries=2, breaker_failures=2)
        _go(failing)
        assert _outcomes(failing) == ["TransientFetchError"]  # two 503s in a row: the circuit opens
        seen = len(platform.log)
        other = _start(database_url, _images(base, range(1, 4)), breaker_failures=2)
        _go(other)
        assert _outcomes(other) == ["CircuitOpen"] * 3
        assert platform.log[seen:] == []  # the other process did not even ask
    engine = create_engine(database_url)
    with engine.connect() as conn:
        failures, is_open = conn.execute(text("SELECT failures, open_until > now() FROM polite_hosts")).one()
    engine.dispose()
    assert failures == 2 and is_open


def test_likeness_crawl_spends_from_the_shared_bucket(database_url: str, tmp_path: Path) -> None:
    """The default: a crawl's fetcher keeps its politeness in the store."""
    platform = Platform(items=10, per_page=10, original=(32, 32))
    with serve(platform) as base:
        settings = Settings(
            home=tmp_path / "home", database_url=database_url, analyzers=["prefilter", "pdq"],
            scan=ScanSettings(workers=1), fetch=_fetch_settings(rate_per_host=500.0, burst_per_host=20),
            crawl=CrawlSettings(civitai_url=base, two_pass=False),
        )  # fmt: skip
        with open_app(settings) as app:
            summary = crawl.crawl(app, crawl.civitai(app), actor="test")
            assert summary.error is None and summary.stopped == "end of listing"
            with app.store.transaction() as session:
                hosts = session.execute(text("SELECT host, failures FROM polite_hosts")).all()
    assert [tuple(h) for h in hosts] == [("127.0.0.1", 0)]
