"""Wiring: settings read once, logging configured, the store opened. Every shell starts here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from likeness import log
from likeness.settings import Settings, get_settings
from likeness.store import Store, open_store

if TYPE_CHECKING:  # the face engine loads with the first enrollment, never to list or review
    from likeness.analyze.faces import FaceEngine
    from likeness.match.indexes import Indexes


@dataclass
class App:
    settings: Settings
    store: Store
    _engine: FaceEngine | None = field(default=None, repr=False)
    _indexes: Indexes | None = field(default=None, repr=False)

    def face_engine(self) -> FaceEngine:
        """Loaded on first use and kept: loading the models costs more than embedding one photo."""
        if self._engine is None:
            from likeness.analyze.faces import make_engine

            self._engine = make_engine(self.settings)
        return self._engine

    def indexes(self) -> Indexes:
        """The process's matching indexes (hash lookups, checks), built on first use and refreshed as the registry
        changes."""
        if self._indexes is None:
            from likeness.match.indexes import Indexes

            self._indexes = Indexes(self.settings)
        return self._indexes

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_app(settings: Settings | None = None) -> App:
    settings = settings or get_settings()
    log.configure(settings.log_level)
    return App(settings, open_store(settings))
