"""CivitAI's public REST API v1: /images (cursor paging), /models with their version images, /tags.

Wire format and quirks follow ../shared/fixtures/civitai/CONTRACT.md: cursors are opaque strings passed back
verbatim, the end is an absent ``nextCursor`` (an empty page with a cursor is not the end), ``type`` is absent
on 2023 items (an image), ``nsfwLevel`` is a string on /images and a number on /models. CDN URLs carry their
rendition in a path segment (``original=true``, ``width=450``), which is how two-pass thumbnails are asked for.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from likeness.errors import MalformedPayload
from likeness.sources.base import Http, Item, Page, expect

THUMBNAIL = "width=450"
ORIGINAL = "original=true"
_LEVELS = {1: "None", 2: "Soft", 4: "Mature", 8: "X", 16: "X", 32: "Blocked"}


def rendition(url: str, params: str) -> str:
    """The same CDN file with other rendition parameters: ``.../<uuid>/<params>/<name>.<ext>``."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if len(segments) >= 3 and "=" in segments[-2]:
        segments[-2] = params
    elif len(segments) >= 2:
        segments.insert(-1, params)
    return urlunsplit(parts._replace(path="/".join(segments)))


class CivitaiListing:
    """/api/v1/images, or /api/v1/models with the images of their versions, with the given filters, newest first
    unless ``sort`` says otherwise."""

    def __init__(
        self, base_url: str, endpoint: str, params: dict[str, str], api_key: str | None = None, thumb_width: int = 450
    ) -> None:
        if endpoint not in _PARSERS:
            raise ValueError(f"unknown CivitAI listing {endpoint!r}")
        self.base_url, self.endpoint = base_url.rstrip("/"), endpoint
        self.params = {"sort": "Newest", "limit": "100", **params}
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self.thumbnail = f"width={thumb_width}"  # the CDN snaps widths to 96, 320, 450, 512, 800...
        query = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()) if k != "limit")
        self.name = f"civitai:{endpoint}:{query}"

    def page(self, http: Http, cursor: str | None) -> Page:
        query = {**self.params, **({"cursor": cursor} if cursor else {})}
        data = http.get_json(f"{self.base_url}/api/v1/{self.endpoint}?{urlencode(query)}", self.headers)
        return _PARSERS[self.endpoint](data, self.base_url, self.thumbnail)


def search_tags(http: Http, base_url: str, query: str, limit: int = 20) -> list[str]:
    """Model tag names matching ``query`` (for ``CivitaiListing(..., "models", {"tag": ...})``)."""
    data = http.get_json(f"{base_url.rstrip('/')}/api/v1/tags?{urlencode({'query': query, 'limit': limit})}")
    items = expect(expect(data, dict, "tags response").get("items"), list, "tags items")
    return [str(expect(t, dict, "tag")["name"]) for t in items if isinstance(t, dict) and "name" in t]


def _envelope(data: Any, what: str) -> tuple[list[Any], str | None]:
    body = expect(data, dict, f"{what} response")
    if "error" in body or ("message" in body and "items" not in body):
        raise MalformedPayload(f"{what}: the API answered with an error: {body.get('error') or body.get('message')}")
    items = expect(body.get("items"), list, f"{what} items")
    metadata = body.get("metadata") or {}
    cursor = expect(metadata, dict, f"{what} metadata").get("nextCursor")
    return items, (str(cursor) if cursor not in (None, "") else None)


def parse_images(data: Any, site: str, thumbnail: str = THUMBNAIL) -> Page:
    raw, cursor = _envelope(data, "/images")
    items, rejected = [], []
    for n, entry in enumerate(raw):
        try:
            items.append(image_item(expect(entry, dict, f"item {n}"), site, thumbnail))
        except (MalformedPayload, KeyError, TypeError, ValueError) as exc:
            rejected.append(f"item {n}: {exc}")
    return Page(items, cursor, rejected)


def image_item(entry: dict[str, Any], site: str, thumbnail: str = THUMBNAIL) -> Item:
    """One /images item. Videos keep their .mp4 and get the still thumbnail the API gives; images are fetched
    as their original, with the 450 px rendition as the first pass."""
    url = expect(entry["url"], str, "url")
    kind = entry.get("type") or "image"
    thumb = (entry.get("thumbnail") or {}).get("url") if kind == "video" else rendition(url, thumbnail)
    return Item(
        key=str(int(entry["id"])),
        url=url if kind == "video" else rendition(url, ORIGINAL),
        page_url=f"{site}/images/{int(entry['id'])}",
        thumb_url=thumb,
        kind=kind,
        width=entry.get("width"),
        height=entry.get("height"),
        created=_time(entry.get("createdAt")),
        nsfw=_level(entry.get("nsfwLevel"), entry.get("nsfw")),
        extra={
            "username": entry.get("username"),
            "post_id": entry.get("postId"),
            "base_model": entry.get("baseModel"),
            "prompt": str((entry.get("meta") or {}).get("prompt") or "")[:2000] or None,
        },
    )


def parse_models(data: Any, site: str, thumbnail: str = THUMBNAIL) -> Page:
    """Every version image of every model on the page; a 2023 version image has no id: its CDN uuid keys it."""
    raw, cursor = _envelope(data, "/models")
    items, rejected = [], []
    for n, model in enumerate(raw):
        try:
            model = expect(model, dict, f"model {n}")
            for version in expect(model.get("modelVersions") or [], list, "modelVersions"):
                for image in expect(version.get("images") or [], list, "version images"):
                    items.append(_model_image(model, version, image, site, thumbnail))
        except (MalformedPayload, KeyError, TypeError, ValueError) as exc:
            rejected.append(f"model {n}: {exc}")
    return Page(items, cursor, rejected)


def _model_image(
    model: dict[str, Any], version: dict[str, Any], image: dict[str, Any], site: str, thumbnail: str
) -> Item:
    url = expect(image["url"], str, "image url")
    image_id = image.get("id") or urlsplit(url).path.split("/")[2]
    return Item(
        key=f"{int(model['id'])}:{int(version['id'])}:{image_id}",
        url=rendition(url, ORIGINAL) if image.get("type", "image") == "image" else url,
        page_url=f"{site}/models/{int(model['id'])}",
        thumb_url=rendition(url, thumbnail) if image.get("type", "image") == "image" else None,
        kind=image.get("type") or "image",
        width=image.get("width"),
        height=image.get("height"),
        created=_time(version.get("publishedAt") or version.get("createdAt")),
        nsfw=_level(image.get("nsfwLevel"), image.get("nsfw")),
        extra={"model": model.get("name"), "version": version.get("name")},
    )


def _level(level: object, flagged: object) -> str | None:
    """The legacy level name: /images gives it, /models gives a bitmask (its highest level counts)."""
    if isinstance(level, str):
        return level
    if isinstance(level, int) and level > 0:
        return _LEVELS.get(1 << (level.bit_length() - 1), "Blocked")
    return "X" if flagged is True else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


_PARSERS = {"images": parse_images, "models": parse_models}
