"""What sources hand to the pipeline, and the narrow HTTP interface crawlers use (the fetcher provides it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from likeness.errors import MalformedPayload


@dataclass(frozen=True)
class MediaRef:
    """A media to read: a local file or a URL, and where it was found.

    Crawled media also carry their source and item key (the crawl's checkpoint records them in the same
    transaction as the media), and may carry ``upgrade_url``: the original, fetched only when the rendition at
    ``location`` shows a face (two-pass thumbnails).
    """

    location: str
    page_url: str | None = None
    source: str | None = None
    key: str | None = None
    upgrade_url: str | None = None
    meta: dict[str, Any] | None = field(default=None, compare=False)  # what the platform said of the item
    # Local files only, and only as the user named them or their folder walk found them: the path's exact bytes
    # (``location`` is its readable form). A ref without it is never read from the file system, whatever its
    # location says: a crawled item cannot make the scanner read a local file.
    raw_path: bytes | None = None
    in_folder: bool = False  # found by a folder walk: kept only if its content is media

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Item:
    """One media a platform lists. ``key`` is the platform's stable id for it (unique within the source)."""

    key: str
    url: str
    page_url: str | None = None
    thumb_url: str | None = None  # a smaller rendition of ``url``: analysed first, the original only if it has a face
    kind: str = "image"  # image | video
    width: int | None = None
    height: int | None = None
    created: datetime | None = None
    nsfw: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Page:
    items: list[Item]
    cursor: str | None  # the next page; None at the end
    rejected: list[str] = field(default_factory=list)  # malformed entries left out, with the reason


class Http(Protocol):
    def get_json(self, url: str, headers: Mapping[str, str] | None = None) -> Any: ...

    def get_text(self, url: str, headers: Mapping[str, str] | None = None) -> str: ...

    def post_form(self, url: str, form: Mapping[str, str]) -> Any: ...


class Source(Protocol):
    """A paged listing, newest first. ``name`` keys its checkpoint: platform and query."""

    name: str

    def page(self, http: Http, cursor: str | None) -> Page: ...


def expect(value: object, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise MalformedPayload(f"{what}: expected {kind.__name__}, got {type(value).__name__}")
    return value
