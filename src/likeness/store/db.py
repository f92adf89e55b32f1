"""Opening the store: an external PostgreSQL (LIKENESS_DATABASE_URL) or the embedded one (store/embedded.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from likeness.settings import Settings
from likeness.store import embedded, keys
from likeness.store.crypto import Box, load_box

_MIGRATION_LOCK = 7_243_019  # pg_advisory_lock key: one migrator at a time


@dataclass
class Store:
    engine: Engine
    sessions: sessionmaker[Session]
    box: Box
    embedded_server: embedded.EmbeddedServer | None = None  # this store is one of its users until close()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed together, or not at all."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()
        server, self.embedded_server = self.embedded_server, None
        if server is not None:
            server.release()


def database_url(settings: Settings) -> str:
    """The external server's URL, or the embedded server's (holding its password: never log it). For the embedded
    one, each call makes this process one more of its users, until ``Store.close`` (or the process's exit)."""
    if settings.database_url:
        return _with_driver(settings.database_url)
    return embedded.server(settings.home / "pg").acquire().url()


def _with_driver(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _embedded_server(settings: Settings) -> embedded.EmbeddedServer | None:
    return None if settings.database_url else embedded.server(settings.home / "pg")


def open_store(settings: Settings, *, migrate: bool = True) -> Store:
    settings.home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url(settings), pool_pre_ping=True)
    if migrate:
        upgrade(engine)
    store = Store(engine, sessionmaker(engine, expire_on_commit=False), load_box(settings), _embedded_server(settings))
    return keys.attach(store, migrate)  # session hooks for owner keys and the audit checkpoint; start-up work


HEAD = "0019"  # the newest migration (a test holds it to Alembic's head): at head, Alembic is not even imported


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head; safe when several processes start at once."""
    if current_revision(engine) == HEAD:
        return
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
