"""Real PostgreSQL (the embedded server, store/embedded.py) for every test: one server per session, a fresh
database per test cloned from a migrated template, so tests never see each other's rows and the append-only audit
log stays append-only."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, text

from likeness.services.app import App, open_app
from likeness.settings import ScanSettings, Settings
from likeness.store import embedded
from likeness.store.db import _with_driver, upgrade

SHARED = Path(__file__).resolve().parents[2] / "shared"
EVAL_DATA = Path(os.environ.get("LIKENESS_EVAL_DATA", SHARED / "eval-data"))
_counter = itertools.count()


class PgServer:
    """The session's server: a private embedded one in a temporary home (password login, socket in a 0700
    directory), with what tests use of it."""

    def __init__(self, endpoint: embedded.Endpoint) -> None:
        self.endpoint = endpoint

    def get_uri(self, database: str = "postgres") -> str:
        return self.endpoint.url(database)

    def psql(self, sql: str) -> None:
        """Run SQL in autocommit mode (CREATE DATABASE needs it: one such statement per call)."""
        with psycopg.connect(**self.endpoint.conninfo(), autocommit=True) as conn:
            conn.execute(sql.encode())


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgServer]:
    server = embedded.server(tmp_path_factory.mktemp("home") / "pg")
    instance = PgServer(server.acquire())
    instance.psql("CREATE DATABASE likeness_template;")
    engine = create_engine(instance.get_uri("likeness_template"))
    upgrade(engine)
    engine.dispose()
    yield instance
    server.release()


@pytest.fixture
def database_url(pg: PgServer) -> str:
    name = f"t{os.getpid()}_{next(_counter)}"
    admin = create_engine(_with_driver(pg.get_uri("postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE likeness_template'))
    admin.dispose()
    return _with_driver(pg.get_uri(name))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=database_url, scan=ScanSettings(workers=2))


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    instance = open_app(settings)
    yield instance
    instance.close()


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running ``likeness`` as a subprocess against this test's database."""
    return {
        **os.environ,
        "LIKENESS_HOME": str(settings.home),
        "LIKENESS_DATABASE_URL": str(settings.database_url),
        "LIKENESS_SCAN__WORKERS": "2",
    }


def needs_eval_data() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (EVAL_DATA / "faces").is_dir(), reason=f"eval data not found at {EVAL_DATA} (../shared/eval-data)"
    )


def scalar(url: str, sql: str) -> int:
    """One integer from the database, through a connection of its own (tests that run the CLI beside them)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        value = int(conn.execute(text(sql)).scalar_one())
    engine.dispose()
    return value


def kill_cli_when(args: list[str], env: dict[str, str], url: str, sql: str, at_least: int) -> None:
    """Run ``likeness ARGS`` in a subprocess and SIGKILL it (and its workers) once ``sql`` counts ``at_least``."""
    code = "import sys; from likeness.cli.main import app; sys.exit(app())"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while scalar(url, sql) < at_least:
        assert proc.poll() is None, f"likeness {' '.join(args)} ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
