"""Reddit listing JSON (``/r/<sub>/<listing>.json``): ``after`` paging, 100 a page, ``raw_json=1``.

Per ../shared/fixtures/reddit/CONTRACT.md: a post's media is an i.redd.it image, a gallery (``gallery_data``
gives the order, ``media_metadata`` the files), a hosted video (``media.reddit_video.fallback_url``) or, for
links, the preview image; a cross-post's media lives in its parent. URLs are unescaped in case ``raw_json``
was not honoured (``&amp;``), and signed preview URLs are kept intact. A throttled answer may come as HTTP 200
with a ``{"message": "Too Many Requests", "error": 429}`` body: it is raised as Throttled, not parsed as empty.
The rate-limit headers are honoured by the fetcher.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from likeness.errors import MalformedPayload, Throttled
from likeness.sources.base import Http, Item, Page, expect

_EXT = {"image/jpg": "jpg", "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}


class RedditListing:
    def __init__(self, base_url: str, subreddit: str, listing: str = "new", period: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.path = f"/r/{subreddit}/{listing}.json"
        self.period = period
        self.name = f"reddit:r/{subreddit}/{listing}" + (f"?t={period}" if period else "")

    def page(self, http: Http, cursor: str | None) -> Page:
        query = {"limit": "100", "raw_json": "1", **({"t": self.period} if self.period else {})}
        if cursor:
            query["after"] = cursor
        return parse_listing(http.get_json(f"{self.base_url}{self.path}?{urlencode(query)}"), self.base_url)


def parse_listing(data: Any, site: str) -> Page:
    body = expect(data, dict, "listing")
    if body.get("error") == 429 or body.get("message") == "Too Many Requests":
        raise Throttled("Reddit answered Too Many Requests", retry_after=60.0)
    if body.get("kind") != "Listing":
        raise MalformedPayload(f"listing: expected kind Listing, got {body.get('kind')!r}")
    listing = expect(body.get("data"), dict, "listing data")
    items, rejected = [], []
    for n, child in enumerate(expect(listing.get("children"), list, "listing children")):
        try:
            post = expect(expect(child, dict, f"child {n}").get("data"), dict, f"child {n} data")
            items += post_items(post, site)
        except (MalformedPayload, KeyError, TypeError, ValueError) as exc:
            rejected.append(f"child {n}: {exc}")
    after = listing.get("after")
    return Page(items, str(after) if after else None, rejected)


def post_items(post: dict[str, Any], site: str) -> list[Item]:
    """The media of one post (none for a self post without preview)."""
    parents = post.get("crosspost_parent_list") or []
    source = parents[0] if parents and isinstance(parents[0], dict) else post
    name = str(post["name"])
    page = site + str(post["permalink"]) if post.get("permalink") else None
    common: dict[str, Any] = {
        "page_url": page,
        "created": datetime.fromtimestamp(float(post["created_utc"]), UTC) if "created_utc" in post else None,
        "nsfw": "X" if post.get("over_18") else None,
        "extra": {"subreddit": post.get("subreddit"), "author": post.get("author"), "title": post.get("title")},
    }
    return [Item(key=f"{name}:{key}" if key else name, **media, **common) for key, media in _media(source)]


def _media(post: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    if post.get("is_gallery") and post.get("media_metadata"):
        return _gallery(post)
    video = (post.get("media") or {}).get("reddit_video") or {}
    if post.get("is_video") and video.get("fallback_url"):
        still = _preview(post)
        return [(None, {"url": _url(video["fallback_url"]), "kind": "video", "thumb_url": still and still["url"]})]
    url = _url(post.get("url_overridden_by_dest") or post.get("url") or "")
    preview = _preview(post)
    if post.get("post_hint") == "image" or url.startswith("https://i.redd.it/"):
        thumb = _resolution(post, 640)
        size = {"width": preview["width"], "height": preview["height"]} if preview else {}
        return [(None, {"url": url, "thumb_url": thumb, **size})]
    if preview:  # a link or rich-video post: its preview picture
        return [(None, {"url": preview["url"], "width": preview["width"], "height": preview["height"]})]
    return []


def _gallery(post: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    metadata = expect(post["media_metadata"], dict, "media_metadata")
    order = [g["media_id"] for g in (post.get("gallery_data") or {}).get("items", [])] or list(metadata)
    found: list[tuple[str | None, dict[str, Any]]] = []
    for media_id in order:
        meta = metadata.get(media_id) or {}
        if meta.get("status") != "valid":
            continue
        source = meta.get("s") or {}
        animated = meta.get("e") == "AnimatedImage"
        url = source.get("mp4") or source.get("gif") if animated else source.get("u")
        url = _url(url) if url else f"https://i.redd.it/{media_id}.{_EXT.get(meta.get('m', ''), 'jpg')}"
        thumbs = [p for p in meta.get("p") or [] if p.get("x", 0) <= 640]
        thumb = _url(thumbs[-1]["u"]) if thumbs and not animated else None
        kind = "video" if animated and source.get("mp4") else "image"
        found.append((str(media_id), {"url": url, "thumb_url": thumb, "kind": kind, "width": source.get("x"),
                                     "height": source.get("y")}))  # fmt: skip
    return found


def _preview(post: dict[str, Any]) -> dict[str, Any] | None:
    images = (post.get("preview") or {}).get("images") or []
    source = images[0].get("source") if images and isinstance(images[0], dict) else None
    if not source or not source.get("url"):
        return None
    return {"url": _url(source["url"]), "width": source.get("width"), "height": source.get("height")}


def _resolution(post: dict[str, Any], widest: int) -> str | None:
    """The largest preview rendition no wider than ``widest`` (the first pass of two-pass fetching)."""
    images = (post.get("preview") or {}).get("images") or []
    sizes = [r for r in (images[0].get("resolutions") or []) if r.get("width", 0) <= widest] if images else []
    return _url(sizes[-1]["url"]) if sizes else None


def _url(value: str) -> str:
    return html.unescape(value)
