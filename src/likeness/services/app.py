"""Wiring: settings read once, logging configured, the store opened. Every shell starts here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from likeness import log
from likeness.settings import Settings, get_settings
from likeness.store import Store, open_store

if TYPE_CHECKING:  # the face engine loads with the first enrollment, never to list or review
    from likeness.analyze.faces import FaceEngine


@dataclass
class App:
    settings: Settings
    store: Store
    _engine: FaceEngine | None = field(default=None, repr=False)

    def face_engine(self) -> FaceEngine:
        """Loaded on first use and kept: loading the models costs more than embedding one photo."""
        if self._engine is None:
            from likeness.analyze.faces import make_engine

            self._engine = make_engine(self.settings)
        return self._engine

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
