"""DeviantArt: the RSS search feed, oEmbed, and the OAuth2 API (browse/tags) when credentials are configured.

Per ../shared/fixtures/deviantart/CONTRACT.md: RSS pages hold up to 60 items and announce the next page in
``<atom:link rel="next">``; an item's full image is ``media:content``, its thumbnails ``media:thumbnail``; the
numeric id is the trailing number of ``link``. API pages loop on ``has_more`` with ``next_cursor`` or
``next_offset``; a deviation's image is ``content.src``, a video its best ``videos[]``, a deleted entry is
skipped. CDN URLs carry short-lived tokens: items are analysed at crawl time, never queued for later.
XML is parsed with defusedxml (no entity expansion from a remote feed).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeXml
from defusedxml import DefusedXmlException

from likeness.errors import MalformedPayload
from likeness.sources.base import Http, Item, Page, expect

_NS = {"media": "http://search.yahoo.com/mrss/", "atom": "http://www.w3.org/2005/Atom"}
_TRAILING_ID = re.compile(r"-(\d+)/?$")


class DeviantartRss:
    def __init__(self, base_url: str, query: str, order: int = 5) -> None:
        self.base_url = base_url.rstrip("/")
        self.query, self.order = query, order  # order 5: newest first
        self.name = f"deviantart:rss:{query}:order={order}"

    def page(self, http: Http, cursor: str | None) -> Page:
        query = {"type": "deviation", "q": self.query, "order": str(self.order)}
        if cursor:
            query["offset"] = cursor
        return parse_rss(http.get_text(f"{self.base_url}/rss.xml?{urlencode(query)}"))


def parse_rss(text: str) -> Page:
    try:
        root = SafeXml.fromstring(text.encode("utf-8"))
    except (SafeXml.ParseError, DefusedXmlException) as exc:
        raise MalformedPayload(f"RSS: not a readable feed: {exc}") from exc
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise MalformedPayload(f"RSS: expected <rss><channel>, got <{root.tag}>")
    items, rejected = [], []
    for n, entry in enumerate(channel.findall("item")):
        try:
            items.append(_rss_item(entry))
        except (MalformedPayload, ValueError) as exc:
            rejected.append(f"item {n}: {exc}")
    return Page(items, _next_offset(channel), rejected)


def _rss_item(entry: Element) -> Item:
    link = (entry.findtext("link") or "").strip()
    match = _TRAILING_ID.search(link)
    content = entry.find("media:content", _NS)
    if not match or content is None or not content.get("url"):
        raise MalformedPayload(f"no deviation id or media:content in {link or 'an item without link'}")
    thumbs = sorted(entry.findall("media:thumbnail", _NS), key=lambda t: int(t.get("width") or 0))
    medium = content.get("medium") or "image"
    return Item(
        key=match.group(1),
        url=str(content.get("url")),
        page_url=link,
        thumb_url=thumbs[-1].get("url") if thumbs and medium == "image" else None,
        kind="video" if medium == "video" else "image",
        width=_int(content.get("width")),
        height=_int(content.get("height")),
        created=_rfc822(entry.findtext("pubDate")),
        nsfw="X" if (entry.findtext("media:rating", namespaces=_NS) or "").strip() == "adult" else None,
        extra={"title": entry.findtext("title")},
    )


def _next_offset(channel: Element) -> str | None:
    for link in channel.findall("atom:link", _NS):
        if link.get("rel") == "next":
            found = re.search(r"[?&]offset=(\d+)", link.get("href") or "")
            return found.group(1) if found else None
    return None


def oembed_item(data: Any) -> Item:
    """The full image of one deviation page, from ``/oembed?url=<page>``."""
    body = expect(data, dict, "oEmbed response")
    url, page = expect(body.get("url"), str, "oEmbed url"), str(body.get("author_url") or "")
    return Item(
        key=url,
        url=url,
        page_url=page or None,
        thumb_url=body.get("thumbnail_url"),
        width=_int(body.get("width")),
        height=_int(body.get("height")),
        created=_iso(body.get("pubdate")),
        nsfw="X" if body.get("safety") == "adult" else None,
        extra={"title": body.get("title"), "author": body.get("author_name")},
    )


class DeviantartTags:
    """/api/v1/oauth2/browse/tags with an app token (client-credentials grant), mature content included."""

    def __init__(self, api_url: str, tag: str, client_id: str, client_secret: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.tag = tag
        self._credentials = {"grant_type": "client_credentials", "client_id": client_id,
                             "client_secret": client_secret}  # fmt: skip
        self._token: str | None = None
        self.name = f"deviantart:tags:{tag}"

    def page(self, http: Http, cursor: str | None) -> Page:
        if self._token is None:
            answer = expect(http.post_form(f"{self.api_url}/oauth2/token", self._credentials), dict, "token")
            self._token = expect(answer.get("access_token"), str, "access_token")
        query = {"tag": self.tag, "limit": "50", "mature_content": "true", **({"cursor": cursor} if cursor else {})}
        headers = {"Authorization": f"Bearer {self._token}"}
        return parse_browse(http.get_json(f"{self.api_url}/api/v1/oauth2/browse/tags?{urlencode(query)}", headers))


def parse_browse(data: Any) -> Page:
    body = expect(data, dict, "browse response")
    if body.get("status") == "error":
        raise MalformedPayload(f"DeviantArt API: {body.get('error')}: {body.get('error_description')}")
    items, rejected = [], []
    for n, entry in enumerate(expect(body.get("results"), list, "results")):
        try:
            item = deviation_item(expect(entry, dict, f"result {n}"))
        except (MalformedPayload, KeyError, ValueError) as exc:
            rejected.append(f"result {n}: {exc}")
            continue
        if item is not None:
            items.append(item)
    more = body.get("has_more")
    cursor = body.get("next_cursor") or body.get("next_offset")
    return Page(items, str(cursor) if more and cursor is not None else None, rejected)


def deviation_item(entry: dict[str, Any]) -> Item | None:
    """A deviation object's media; None for deleted works and literature (nothing to look at)."""
    if entry.get("is_deleted"):
        return None
    videos = sorted(entry.get("videos") or [], key=lambda v: int(v.get("filesize") or 0))
    content = entry.get("content") or {}
    if not videos and not content.get("src"):
        return None
    preview = (entry.get("preview") or {}).get("src")
    return Item(
        key=str(entry["deviationid"]),
        url=videos[-1]["src"] if videos else content["src"],
        page_url=entry.get("url"),
        thumb_url=preview if not videos else None,
        kind="video" if videos else "image",
        width=_int(content.get("width")),
        height=_int(content.get("height")),
        created=datetime.fromtimestamp(int(entry["published_time"]), UTC) if entry.get("published_time") else None,
        nsfw="X" if entry.get("is_mature") else None,
        extra={"title": entry.get("title"), "author": (entry.get("author") or {}).get("username")},
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _rfc822(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _iso(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
