"""Migrations run forward over existing data and back again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

import likeness.store.db as db


def _config(conn: object) -> Config:
    folder = Path(db.__file__).with_name("migrations")
    config = Config(str(folder / "alembic.ini"))
    config.set_main_option("script_location", str(folder))
    config.attributes["connection"] = conn
    return config


def test_upgrade_from_0001_keeps_protected_hashes_and_creates_their_banks(pg: object) -> None:
    pg.psql("CREATE DATABASE migrate_test;")  # type: ignore[attr-defined]
    engine = create_engine(db._with_driver(pg.get_uri("migrate_test")))  # type: ignore[attr-defined]
    with engine.connect() as conn:
        command.upgrade(_config(conn), "0001")
        conn.execute(
            text(
                "INSERT INTO protected_hashes (bank, algorithm, digest, quality) "
                "VALUES ('ncii', 'pdq/1.0', '\\x00', 80), ('other', 'pdq/1.0', '\\x01', 90)"
            )
        )
        conn.commit()
    db.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM banks ORDER BY name")).scalars().all() == ["ncii", "other"]
        assert conn.execute(text("SELECT count(*) FROM protected_hashes")).scalar() == 2
        command.downgrade(_config(conn), "0001")
        conn.commit()
        assert conn.execute(text("SELECT to_regclass('banks')")).scalar() is None
        command.upgrade(_config(conn), "head")
        conn.commit()
        head = ScriptDirectory.from_config(_config(conn)).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head == db.HEAD
    engine.dispose()


def test_models_and_migrations_agree(app: object) -> None:
    """Autogenerate against a database migrated to head must find nothing to do."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from likeness.store.models import Base

    with app.store.engine.connect() as conn:  # type: ignore[attr-defined]
        context = MigrationContext.configure(conn, opts={"include_name": _not_procrastinate})
        assert compare_metadata(context, Base.metadata) == []


def _not_procrastinate(name: str | None, type_: str, parent: object) -> bool:
    """procrastinate's tables come from its own schema.sql (migration 0012), not from ORM models."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))
