"""Opening the store: an external PostgreSQL (LIKENESS_DATABASE_URL) or the embedded pgserver one."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from likeness.settings import Settings
from likeness.store.crypto import Box, load_box

_MIGRATION_LOCK = 7_243_019  # pg_advisory_lock key: one migrator at a time
_embedded: dict[Path, Any] = {}  # pgserver handles, kept alive for the life of the process


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    box: Box

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed together, or not at all."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()


def database_url(settings: Settings) -> str:
    if settings.database_url:
        return _with_driver(settings.database_url)
    return _with_driver(_embedded_server(settings.home / "pg").get_uri())


def _with_driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _embedded_server(pgdata: Path) -> Any:
    """Start (or join) the private PostgreSQL in the data directory; pgserver stops it when its last user exits."""
    if pgdata not in _embedded:
        with warnings.catch_warnings():
            # platformdirs complains about XDG_RUNTIME_DIR on headless machines; pgserver does not use it.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pgserver

            pgdata.mkdir(parents=True, exist_ok=True)
            _embedded[pgdata] = pgserver.get_server(pgdata, cleanup_mode="stop")
    return _embedded[pgdata]


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url(settings), pool_pre_ping=True)
    if migrate:
        upgrade(engine)
    return Store(engine, sessionmaker(engine, expire_on_commit=False), load_box(settings))


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head; safe when several processes start at once."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(Path(__file__).with_name("migrations") / "alembic.ini"))
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
        try:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
            conn.commit()
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT to_regclass('alembic_version')")).scalar()
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() if exists else None
