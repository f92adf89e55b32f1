from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaRef:
    """A media to fetch: a local path or a URL, and where it was found."""

    location: str
    page_url: str | None = None

    @property
    def is_url(self) -> bool:
        return self.location.startswith(("http://", "https://"))
