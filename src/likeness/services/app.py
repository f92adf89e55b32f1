"""Wiring: settings read once, logging configured, the store opened. Every shell starts here."""

from __future__ import annotations

from dataclasses import dataclass

from likeness import log
from likeness.settings import Settings, get_settings
from likeness.store import Store, open_store


@dataclass
class App:
    settings: Settings
    store: Store

    def close(self) -> None:
        self.store.close()


def open_app(settings: Settings | None = None) -> App:
    settings = settings or get_settings()
    log.configure(settings.log_level)
    return App(settings, open_store(settings))
