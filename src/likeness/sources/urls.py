"""A file of URLs: media URLs are taken as they are, sitemaps (``.xml``) give their pages, and pages are parsed
for their pictures (``<img src|srcset>``, ``og:image``) with selectolax.

The file is read in pages of ``per_page`` lines; the cursor is the next line number, so a crawl of a long list
resumes where it stopped. Only http(s) URLs are taken; every one still passes the fetcher's SSRF guard.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

import defusedxml.ElementTree as SafeXml
from defusedxml import DefusedXmlException
from selectolax.lexbor import LexborHTMLParser

from likeness.errors import LikenessError
from likeness.sources.base import Http, Item, Page
from likeness.sources.deviantart import oembed_item
from likeness.sources.local import MEDIA_SUFFIXES

_VIDEO = frozenset({".mp4", ".webm", ".mov"})


class UrlList:
    """``oembed_base``: where DeviantArt's oEmbed lives; a deviation page's full image is asked from it (its page
    only shows a token-limited preview)."""

    def __init__(self, path: Path, per_page: int = 100, oembed_base: str | None = None) -> None:
        self.oembed_base = oembed_base
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise LikenessError(f"{path}: {exc}") from exc
        self.lines = [line.strip() for line in text.splitlines()]
        self.per_page = per_page
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        self.name = f"urls:{path.name}:{digest}"  # another content is another list, with its own checkpoint

    def page(self, http: Http, cursor: str | None) -> Page:
        start = int(cursor or 0)
        end = min(start + self.per_page, len(self.lines))
        items, rejected = [], []
        for number in range(start, end):
            url = self.lines[number]
            if not url or url.startswith("#"):
                continue
            if urlsplit(url).scheme not in ("http", "https"):
                rejected.append(f"line {number + 1}: not an http(s) URL: {url[:80]}")
                continue
            try:
                items += self._deviation(http, url) if self._is_deviation(url) else expand(http, url)
            except LikenessError as exc:
                rejected.append(f"line {number + 1}: {exc}")
        return Page(items, str(end) if end < len(self.lines) else None, rejected)

    def _is_deviation(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            self.oembed_base is not None and (parts.hostname or "").endswith("deviantart.com") and "/art/" in parts.path
        )

    def _deviation(self, http: Http, url: str) -> list[Item]:
        item = oembed_item(http.get_json(f"{self.oembed_base}/oembed?{urlencode({'url': url})}"))
        return [replace(item, key=url, page_url=url)]


def expand(http: Http, url: str, depth: int = 0) -> list[Item]:
    """A media URL as it is; a sitemap (index) to its pages, at most two levels deep; a page to its pictures."""
    suffix = Path(urlsplit(url).path).suffix.lower()
    if suffix in MEDIA_SUFFIXES:
        return [Item(key=url, url=url, kind="video" if suffix in _VIDEO else "image")]
    text = http.get_text(url)
    if suffix == ".xml" or text.lstrip().startswith("<?xml"):
        if depth >= 2:
            raise LikenessError(f"{url}: sitemaps nested more than two deep")
        return [item for page in sitemap_pages(text) for item in expand(http, page, depth + 1)]
    return [Item(key=src, url=src, page_url=url) for src in page_images(text, url)]


def page_images(html: str, base: str) -> list[str]:
    """Absolute URLs of a page's pictures, each once, in page order: og:image first, then every ``<img>`` (the
    largest ``srcset`` candidate where there is one)."""
    tree = LexborHTMLParser(html)
    found = [node.attributes.get("content") for node in tree.css('meta[property="og:image"]')]
    for img in tree.css("img"):
        srcset = img.attributes.get("srcset")
        found.append(_largest(srcset) if srcset else img.attributes.get("src"))
    urls = [urljoin(base, u.strip()) for u in found if u and not u.strip().startswith("data:")]
    return [u for u in dict.fromkeys(urls) if urlsplit(u).scheme in ("http", "https")]


def _largest(srcset: str) -> str | None:
    best, width = None, -1.0
    for candidate in srcset.split(","):
        parts = candidate.split()
        if not parts:
            continue
        size = re.fullmatch(r"(\d+(?:\.\d+)?)[wx]", parts[1]) if len(parts) > 1 else None
        value = float(size.group(1)) if size else 0.0
        if value > width:
            best, width = parts[0], value
    return best


def sitemap_pages(text: str) -> list[str]:
    """The ``<loc>`` URLs of a sitemap or sitemap index (image sitemap entries included)."""
    try:
        root = SafeXml.fromstring(text.encode("utf-8"))
    except (SafeXml.ParseError, DefusedXmlException) as exc:
        raise LikenessError(f"not a readable sitemap: {exc}") from exc
    return [(loc.text or "").strip() for loc in root.iter() if loc.tag.endswith("}loc") or loc.tag == "loc"]
