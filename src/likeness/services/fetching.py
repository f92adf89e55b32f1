"""The fetcher a service uses: its politeness shared through the store (fetch/shared.py), so that every process
crawling a host spends from one bucket, unless ``settings.polite.shared`` is off."""

from __future__ import annotations

from likeness.fetch import Fetcher
from likeness.fetch.shared import SharedPoliteness
from likeness.settings import Settings
from likeness.store.db import Store


def fetcher(settings: Settings, store: Store) -> Fetcher:
    politeness = None
    if settings.polite.shared:
        url = store.engine.url.render_as_string(hide_password=False)  # the store's own server, embedded or not
        politeness = SharedPoliteness(url, settings.fetch, settings.polite)
    return Fetcher(settings.fetch, settings.media.max_bytes, politeness=politeness)
