"""Crawls against the platform simulator (a real HTTP server): paging, cursor bugs, faults, incremental runs,
two-pass thumbnails, Reddit's and DeviantArt's formats, URL lists, robots.txt."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from likeness.services import crawl
from likeness.services.app import App, open_app
from likeness.settings import CrawlSettings, FetchSettings, ScanSettings, Settings
from likeness.store.models import CrawlItem, Media, Sighting
from tests.simulator import Faults, Platform, serve


def _settings(
    base: str, database_url: str, home: Path, analyzers: list[str] | None = None, **crawl_kw: object
) -> Settings:
    return Settings(
        home=home,
        database_url=database_url,
        analyzers=analyzers or ["prefilter", "pdq"],
        scan=ScanSettings(workers=2),
        fetch=FetchSettings(allow_private_networks=True, rate_per_host=500, burst_per_host=20, backoff_s=0.05),
        crawl=CrawlSettings(civitai_url=base, reddit_url=base, deviantart_rss_url=base, throttle_wait_s=0.2,
                            **crawl_kw),  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.fixture
def platform() -> Platform:
    return Platform(items=30, per_page=10)


@pytest.fixture
def sim(platform: Platform) -> Iterator[str]:
    with serve(platform) as base:
        yield base


@pytest.fixture
def crawler(sim: str, database_url: str, tmp_path: Path) -> Iterator[App]:
    instance = open_app(_settings(sim, database_url, tmp_path / "home", two_pass=False))
    yield instance
    instance.close()


def _count(app: App, model: type, *where: object) -> int:
    with app.store.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def test_first_crawl_catalogues_every_item_once_then_only_new_ones(crawler: App, platform: Platform) -> None:
    first = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert first.error is None and first.stopped == "end of listing" and first.pages == 3
    assert _count(crawler, Media) == 30 and _count(crawler, CrawlItem, CrawlItem.status == "done") == 30
    with crawler.store.transaction() as session:
        pages = set(session.scalars(select(Sighting.page_url)))
    assert f"{crawler.settings.crawl.civitai_url}/images/30" in pages

    again = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert again.pages == 1 and again.stopped == "reached content already crawled" and again.scan.files == 0

    platform.grow(4)  # four new posts on top
    newer = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert newer.scan.files == 4 and newer.seen == 6 and _count(crawler, Media) == 34
    [state] = crawl.status(crawler)
    assert state.backfilled and state.cursor is None and state.items == 30 + 10 + 10


@pytest.mark.parametrize(
    "faults",
    [
        Faults(status_every=3, status=503, retry_after="0"),
        Faults(status_every=2, status=429, retry_after="1"),
        Faults(truncate_every=7),
        Faults(repeat_last_item=True),
        Faults(empty_page=1),
    ],
    ids=["503", "429-retry-after", "truncated-bodies", "duplicates-across-pages", "empty-page-with-cursor"],
)
def test_faults_lose_and_repeat_nothing(crawler: App, platform: Platform, faults: Faults) -> None:
    platform.faults = faults
    summary = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert summary.error is None and summary.scan.errors == []
    assert _count(crawler, Media) == (30 if faults.empty_page is None else 20)  # page 1's items are not listed
    assert _count(crawler, Sighting) == _count(crawler, Media)
    if faults.status == 429:  # the server asked for 1 s between its 429 and the retry
        api = [t for t, path in platform.log if path.startswith("/api/")]
        assert max(b - a for a, b in itertools.pairwise(api)) >= 0.9


def test_a_cursor_that_loops_back_ends_the_walk(crawler: App, platform: Platform) -> None:
    platform.faults = Faults(loop_at=1)  # page 1 says the next page is page 1
    summary = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert summary.stopped.startswith("cursor loop") and summary.pages == 2  # noticed before asking again
    assert _count(crawler, Media) == 20  # pages 0 and 1, page 1 once


def test_max_pages_then_resume_from_the_checkpoint(crawler: App) -> None:
    part = crawl.crawl(crawler, crawl.civitai(crawler), max_pages=2, actor="test")
    assert part.stopped == "max pages (2)" and _count(crawler, Media) == 20
    [state] = crawl.status(crawler)
    assert state.cursor is not None and not state.backfilled
    rest = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert rest.scan.files == 10 and _count(crawler, Media) == 30  # the head pass met seen items at once


def test_transient_failures_are_retried_on_the_next_run(crawler: App, platform: Platform) -> None:
    crawler.settings.fetch.retries = 1
    platform.faults = Faults(truncate_every=4)
    first = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    failed = _count(crawler, CrawlItem, CrawlItem.status == "failed")
    assert failed == len(first.scan.errors) > 0 and _count(crawler, Media) == 30 - failed
    platform.faults = Faults()
    second = crawl.crawl(crawler, crawl.civitai(crawler), actor="test")
    assert second.retried == failed and _count(crawler, Media) == 30
    assert _count(crawler, CrawlItem, CrawlItem.status == "failed") == 0


def test_two_pass_fetches_originals_only_for_faces(
    sim: str, platform: Platform, database_url: str, tmp_path: Path
) -> None:
    settings = _settings(sim, database_url, tmp_path / "home", ["prefilter", "pdq", "faces"])
    with open_app(settings) as app:
        summary = crawl.crawl(app, crawl.civitai(app), actor="test")
        assert summary.error is None and summary.scan.upgraded == 6  # ids 5, 10, ... 30 show a face
        originals = [p for _, p in platform.log if "original=true" in p]
        assert len(originals) == 6 and all(int(p.rsplit("/", 1)[1].split(".")[0]) % 5 == 0 for p in originals)
        with app.store.transaction() as session:
            sizes = dict(session.execute(select(Media.width, func.count()).group_by(Media.width)).all())
        assert sizes == {640: 6, 450: 24}  # faces analysed on the original, the rest on the thumbnail


def test_small_items_and_videos_are_skipped_before_download(
    sim: str, platform: Platform, database_url: str, tmp_path: Path
) -> None:
    platform.original = (90, 120)
    with open_app(_settings(sim, database_url, tmp_path / "home", two_pass=False)) as app:
        summary = crawl.crawl(app, crawl.civitai(app), actor="test")
        assert summary.skipped == 30 and summary.scan.files == 0
        assert not [p for _, p in platform.log if p.startswith("/img/")]
        assert _count(app, CrawlItem, CrawlItem.status == "skipped") == 30


def test_reddit_galleries_images_and_rate_limit_headers(
    sim: str, platform: Platform, database_url: str, tmp_path: Path
) -> None:
    platform.faults = Faults(status_every=3)  # every third listing answers "Too Many Requests" with HTTP 200
    with open_app(_settings(sim, database_url, tmp_path / "home", two_pass=False)) as app:
        summary = crawl.crawl(app, crawl.reddit(app, "sim"), actor="test")
        assert summary.error is None, summary.error
        galleries = 10  # ids 3, 6, ... 30: two pictures each
        assert _count(app, Media) == 30 + galleries
        with app.store.transaction() as session:
            keys = set(session.scalars(select(CrawlItem.key)))
        assert "t3_p3:g3a" in keys and "t3_p3:g3b" in keys and "t3_p1" in keys
    listing = [t for t, p in platform.log if p.startswith("/r/")]
    assert listing[1] - listing[0] >= 0.9  # the first answer said 0 remaining, reset in 1 s


def test_deviantart_rss_pages(sim: str, platform: Platform, database_url: str, tmp_path: Path) -> None:
    with open_app(_settings(sim, database_url, tmp_path / "home", two_pass=False)) as app:
        summary = crawl.crawl(app, crawl.deviantart(app, query="by:someone"), actor="test")
        assert summary.error is None and summary.pages == 3 and _count(app, Media) == 30
        with app.store.transaction() as session:
            page = session.scalar(select(Sighting.page_url).limit(1))
        assert page is not None and page.startswith("https://www.deviantart.com/someone/art/Work-")


def test_url_list_with_media_pages_and_a_sitemap(sim: str, database_url: str, tmp_path: Path) -> None:
    listing = tmp_path / "urls.txt"
    deviation = "https://www.deviantart.com/someone/art/Work-9"  # its full image through oEmbed (the simulator)
    listing.write_text(
        f"# a comment\n{sim}/img/0001-0000/original=true/7.jpeg\n{sim}/sitemap.xml\nftp://x/y\n{deviation}\n"
    )
    with open_app(_settings(sim, database_url, tmp_path / "home")) as app:
        summary = crawl.crawl(app, crawl.url_list(app, listing), actor="test")
        assert summary.rejected == ["line 4: not an http(s) URL: ftp://x/y"]
        assert _count(app, Media) == 5  # item 7, the page's og:image, img and largest srcset candidate, item 9
        with app.store.transaction() as session:
            pages = set(session.scalars(select(Sighting.page_url)))
            nsfw = session.scalar(select(CrawlItem.meta["nsfw"].astext).where(CrawlItem.key == deviation))
        assert pages == {None, f"{sim}/page.html", deviation} and nsfw == "X"


def test_robots_txt_is_respected(sim: str, platform: Platform, database_url: str, tmp_path: Path) -> None:
    platform.faults = Faults(robots="User-agent: *\nDisallow: /img/\n")
    with open_app(_settings(sim, database_url, tmp_path / "home", two_pass=False)) as app:
        summary = crawl.crawl(app, crawl.civitai(app), max_pages=1, actor="test")
        assert {e.kind for e in summary.scan.errors} == {"robots"} and len(summary.scan.errors) == 10
    assert not [p for _, p in platform.log if p.startswith("/img/")]


def test_cli_crawl_and_status(sim: str, cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from likeness.cli.main import app as cli
    from likeness.settings import get_settings

    env = {**cli_env, "LIKENESS_CRAWL__CIVITAI_URL": sim, "LIKENESS_FETCH__ALLOW_PRIVATE_NETWORKS": "true",
           "LIKENESS_ANALYZERS": '["prefilter","pdq"]', "LIKENESS_FETCH__RATE_PER_HOST": "500"}  # fmt: skip
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    crawled = runner.invoke(cli, ["crawl", "civitai", "--max-pages", "2", "--json"])
    assert crawled.exit_code == 0, crawled.output
    summary = json.loads(crawled.output)
    assert summary["pages"] == 2 and summary["scan"]["files"] == 20 and summary["stopped"] == "max pages (2)"
    status = runner.invoke(cli, ["crawl", "status", "--format", "json"])
    [row] = json.loads(status.output)
    assert row["source"] == "civitai:images:sort=Newest" and row["cursor"] and row["items"] == 20
    refused = runner.invoke(cli, ["crawl", "deviantart", "--tag", "art"])
    assert refused.exit_code == 3 and "needs LIKENESS_CRAWL__DEVIANTART_CLIENT_ID" in refused.output  # configuration
    get_settings.cache_clear()


def test_civitai_models_listing_builds_its_requests_from_the_contract() -> None:
    """Our own /models payload (2024 shape: numeric nsfwLevel bitmask, version images with ids)."""
    from likeness.sources.civitai import CivitaiListing

    asked: list[str] = []
    model = {"id": 7, "name": "m", "modelVersions": [{"id": 70, "name": "v1", "publishedAt": "2024-05-01T00:00:00Z",
             "images": [{"id": 700, "url": "https://image.civitai.com/acc/uuid-1/width=450/700.jpeg",
                         "nsfwLevel": 12, "width": 832, "height": 1216, "type": "image"}]}]}  # fmt: skip

    class Http:
        def get_json(self, url: str, headers: object = None) -> object:
            asked.append(url)
            return {"items": [model], "metadata": {"nextCursor": "7|70"}}

    source = CivitaiListing("https://civitai.example", "models", {"tag": "portrait"}, api_key="k")
    page = source.page(Http(), "6|60")  # type: ignore[arg-type]
    assert asked == ["https://civitai.example/api/v1/models?sort=Newest&limit=100&tag=portrait&cursor=6%7C60"]
    assert source.name == "civitai:models:sort=Newest,tag=portrait" and source.headers == {"Authorization": "Bearer k"}
    [item] = page.items
    assert item.key == "7:70:700" and item.nsfw == "X" and page.cursor == "7|70"  # 12 = R|X: its highest level
    assert item.url.endswith("/uuid-1/original=true/700.jpeg") and item.thumb_url.endswith("/width=450/700.jpeg")
    with pytest.raises(ValueError, match="unknown CivitAI listing"):
        CivitaiListing("https://civitai.example", "posts", {})


def test_since_stops_at_older_items_without_scanning_them(crawler: App) -> None:
    from datetime import datetime

    summary = crawl.crawl(
        crawler, crawl.civitai(crawler), since=datetime(2026, 1, 1, 0, 15), actor="test"
    )  # item 15, naive: UTC
    assert summary.stopped.startswith("reached items older than 2026-01-01T00:15:00+00:00") and summary.pages == 2
    assert _count(crawler, Media) == 16  # items 30 down to 15


def test_what_the_platform_said_is_kept_with_the_item(crawler: App) -> None:
    crawl.crawl(crawler, crawl.civitai(crawler), max_pages=1, actor="test")
    with crawler.store.transaction() as session:
        meta = session.scalar(select(CrawlItem.meta).where(CrawlItem.key == "30"))
    assert meta is not None
    assert meta["created"] == "2026-01-01T00:30:00+00:00" and meta["username"] == "user2" and meta["nsfw"] == "None"
    assert meta["width"] == 640 and meta["post_id"] == 30


def test_two_items_with_one_thumbnail_each_get_their_original(database_url: str, tmp_path: Path) -> None:
    """Driven through the scan's Run, so that the second item arrives while the first is being analysed."""
    from contextlib import ExitStack

    from likeness.fetch import Fetcher
    from likeness.services.scan import Run, ScanSummary
    from likeness.sources.base import MediaRef

    platform = Platform(items=10, per_page=10)
    with (
        serve(platform) as base,
        open_app(_settings(base, database_url, tmp_path / "h", ["prefilter", "faces"])) as app,
    ):
        url = f"{base}/img/00000005-0000/{{}}/{{}}.jpeg"
        summary = ScanSummary()
        with ExitStack() as stack, Fetcher(app.settings.fetch, 1 << 24) as fetcher:
            run = Run(app.store, app.settings, summary, stack, fetcher, actor="test")
            thumbnail = fetcher.get(url.format("width=450", 5))  # a face: both items are said to show it
            for item in (5, 10):
                ref = MediaRef(url.format("width=450", item), None, "sim", str(item), url.format("original=true", item))
                run.submit(ref, thumbnail)
            run.drain(0)
        assert summary.duplicates_in_scan == 1 and summary.errors == []
        assert _count(app, CrawlItem, CrawlItem.status == "done") == 2
        with app.store.transaction() as session:
            seen = set(session.scalars(select(Sighting.location)))
        assert seen == {url.format("original=true", 5), url.format("original=true", 10)}


def test_deviantart_api_by_tag_with_client_credentials(
    sim: str, platform: Platform, database_url: str, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    settings = _settings(sim, database_url, tmp_path / "home", two_pass=False, deviantart_api_url=sim,
                         deviantart_client_id="id", deviantart_client_secret=SecretStr("s3cret"))  # fmt: skip
    with open_app(settings) as app:
        summary = crawl.crawl(app, crawl.deviantart(app, tag="portrait"), actor="test")
        assert summary.error is None and summary.pages == 3
        assert _count(app, Media) == 29  # item 2 is a deleted deviation
        with app.store.transaction() as session:
            mature = session.scalar(select(CrawlItem.meta["nsfw"].astext).where(CrawlItem.key.startswith("0000001E")))
        assert mature == "X"  # item 30 is mature
    assert [p for _, p in platform.log if p == "/oauth2/token"] == ["/oauth2/token"]  # one token for the crawl
    assert repr(settings.crawl.deviantart_client_secret) == "SecretStr('**********')"


def test_first_pass_width_is_a_setting(sim: str, platform: Platform, database_url: str, tmp_path: Path) -> None:
    settings = _settings(sim, database_url, tmp_path / "home", thumb_width=320)
    with open_app(settings) as app:
        crawl.crawl(app, crawl.civitai(app), max_pages=1, actor="test")
    assert {p.split("/")[3] for _, p in platform.log if p.startswith("/img/")} == {
        "width=320"
    }  # no faces: no originals
