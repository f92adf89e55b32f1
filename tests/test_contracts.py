"""Contract tests: every authentic sample in ../shared/fixtures parses as its CONTRACT.md says (skipped with a
reason where the fixtures are absent). Nothing from there is copied into this repository."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from likeness.errors import MalformedPayload, Throttled
from likeness.sources import civitai, deviantart, reddit
from tests.conftest import SHARED

FIXTURES = SHARED / "fixtures"
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"platform fixtures not found at {FIXTURES}")
SITE = "https://civitai.com"


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _all(platform: str, pattern: str) -> list[Path]:
    return sorted((FIXTURES / platform).glob(pattern)) if FIXTURES.is_dir() else []


@pytest.mark.parametrize("path", _all("civitai", "images_v1_*.json"), ids=lambda p: p.name)
def test_civitai_image_pages(path: Path) -> None:
    page = civitai.parse_images(json.loads(path.read_text()), SITE)
    assert page.rejected == []
    raw = json.loads(path.read_text())
    assert [i.key for i in page.items] == [str(x["id"]) for x in raw["items"]]
    assert page.cursor == (str(raw["metadata"]["nextCursor"]) if raw["metadata"].get("nextCursor") else None)
    for item in page.items:
        assert "/original=true/" in item.url and item.thumb_url and "/width=450/" in item.thumb_url
        assert item.page_url == f"{SITE}/images/{item.key}" and item.created is not None


def test_civitai_empty_page_with_a_cursor_is_not_the_end() -> None:
    page = civitai.parse_images(_load("civitai/images_v1_page2_empty-but-continues_constructed.json"), SITE)
    assert page.items == [] and page.cursor is not None
    end = civitai.parse_images(_load("civitai/images_v1_end_empty_issue-1329.json"), SITE)
    assert end.items == [] and end.cursor is None


def test_civitai_video_item_keeps_its_mp4_and_still() -> None:
    item = civitai.image_item(_load("civitai/image_item_video_constructed.json"), SITE)
    assert item.kind == "video" and item.url.endswith(".mp4") and item.nsfw == "X"
    assert item.thumb_url is not None and "anim=false" in item.thumb_url
    picture = civitai.image_item(_load("civitai/image_item_2025-09.json"), SITE)
    assert picture.kind == "image" and picture.width == 768


@pytest.mark.parametrize("path", _all("civitai", "models_v1_*.json"), ids=lambda p: p.name)
def test_civitai_model_pages(path: Path) -> None:
    raw = json.loads(path.read_text())
    page = civitai.parse_models(raw, SITE)
    expected = sum(len(v.get("images") or []) for m in raw["items"] for v in m.get("modelVersions") or [])
    assert page.rejected == [] and len(page.items) == expected > 0
    assert len({i.key for i in page.items}) == len(page.items)  # 2023 images have no id: their uuid keys them
    assert all(i.page_url and i.page_url.startswith(f"{SITE}/models/") for i in page.items)


def test_civitai_tags_and_errors() -> None:
    class Answer:
        def __init__(self, data: Any) -> None:
            self.data = data

        def get_json(self, url: str, headers: object = None) -> Any:
            return self.data

    names = civitai.search_tags(Answer(_load("civitai/tags_v1_limit3_official-wiki.json")), SITE, "x")  # type: ignore[arg-type]
    assert len(names) == 3 and all(isinstance(n, str) and n for n in names)
    for name, error in _load("civitai/errors_constructed.json").items():
        if isinstance(error, dict) and "body" in error:
            with pytest.raises(MalformedPayload):
                civitai.parse_images(error["body"], SITE)
            assert name


@pytest.mark.parametrize("path", _all("reddit", "listing_*.json"), ids=lambda p: p.name)
def test_reddit_listings(path: Path) -> None:
    raw = json.loads(path.read_text())
    page = reddit.parse_listing(raw, "https://www.reddit.com")
    assert page.rejected == [] and page.cursor == raw["data"]["after"]
    assert page.items and all("&amp;" not in i.url and "&amp;" not in (i.thumb_url or "") for i in page.items)
    posts = {c["data"]["name"]: c["data"] for c in raw["data"]["children"]}
    for item in page.items:
        post = posts[item.key.split(":")[0]]
        assert item.nsfw == ("X" if post.get("over_18") else None)
        assert item.page_url == "https://www.reddit.com" + post["permalink"]
        if post.get("is_video"):
            assert item.kind == "video"
    for name, post in posts.items():
        if post.get("is_gallery"):
            keys = [i.key for i in page.items if i.key.startswith(name + ":")]
            assert keys == [f"{name}:{g['media_id']}" for g in post["gallery_data"]["items"]]


def test_reddit_throttled_bodies() -> None:
    samples = _load("reddit/headers_ratelimit_constructed.json")
    for case in ("throttled", "throttled_body_with_200"):
        with pytest.raises(Throttled):
            reddit.parse_listing(samples[case]["body"], "https://www.reddit.com")


@pytest.mark.parametrize("path", _all("deviantart", "rss_*.xml"), ids=lambda p: p.name)
def test_deviantart_rss(path: Path) -> None:
    page = deviantart.parse_rss(path.read_text(encoding="utf-8"))
    assert page.rejected == [] and page.items and page.cursor == "60"
    for item in page.items:
        assert item.page_url and item.page_url.endswith("-" + item.key) and item.url.startswith("https://")
        assert item.created is not None and item.created.tzinfo is not None


@pytest.mark.parametrize(
    "name", ["api_v1_browse_tags_tag-art_2024-09.json", "api_v1_browse_topic_topic-art_2024-09.json"]
)
def test_deviantart_browse(name: str) -> None:
    raw = _load(f"deviantart/{name}")
    page = deviantart.parse_browse(raw)
    assert page.rejected == [] and len(page.items) == len(raw["results"])
    assert page.cursor == raw["next_cursor"]
    assert all(i.url.startswith("https://") and i.created is not None for i in page.items)


def test_deviantart_deviation_objects_and_oembed() -> None:
    gallery = _load("deviantart/api_v1_deviation_objects_2021-02_gallery-sample.json")
    found = [deviantart.deviation_item(d) for d in gallery]
    assert sum(i is not None for i in found) == sum(1 for d in gallery if (d.get("content") or {}).get("src"))
    objects = _load("deviantart/api_v1_deviation_objects_2019-01_video-flash-motionbook.json")
    [video] = [v for v in map(deviantart.deviation_item, objects) if v is not None and v.kind == "video"]
    renditions = next(d["videos"] for d in objects if d.get("videos"))
    assert video.url == max(renditions, key=lambda r: r["filesize"])["src"]  # the largest rendition
    single = deviantart.deviation_item(_load("deviantart/api_v1_deviation_single_2024-09.json"))
    assert single is not None and single.key.count("-") == 4
    embed = deviantart.oembed_item(_load("deviantart/oembed_2020-07.json"))
    assert embed.width is not None and embed.url.startswith("https://") and embed.nsfw is None


def test_deviantart_error_bodies() -> None:
    for error in _load("deviantart/api_v1_errors_from-issues.json").values():
        if isinstance(error, dict) and isinstance(error.get("body"), dict):
            with pytest.raises(MalformedPayload, match=error["body"]["error"]):
                deviantart.parse_browse(error["body"])
