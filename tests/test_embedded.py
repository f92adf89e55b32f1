"""The embedded PostgreSQL is private (socket directory only we can enter, password login, nothing opened up
outside its data directory) and tidy (a killed first start recovers, a server nobody alive uses is stopped by the
next command's exit). Every server here is a real one, in a home of its own; commands run as real subprocesses
and are SIGKILLed for real."""

from __future__ import annotations

import os
import pwd
import random
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from likeness.errors import ConfigurationError
from likeness.store import embedded
from tests import images

# A command that uses the store: opens it, says "ready", answers "query" lines, and closes it at end of input.
USER = """
import sys
from pathlib import Path
from sqlalchemy import text
from likeness.settings import Settings
from likeness.store import open_store

store = open_store(Settings(home=Path(sys.argv[1]), database_url=None), migrate=False)
print("ready", flush=True)
for line in sys.stdin:
    with store.engine.connect() as conn:
        print(conn.execute(text("SELECT 41 + 1")).scalar_one(), flush=True)
store.close()
"""

# A first start, told to begin once its imports are done (so that the kill lands in the start itself).
FIRST_START = """
import sys, time
from pathlib import Path
from likeness.errors import ConfigurationError
from likeness.store import embedded

server = embedded.server(Path(sys.argv[1]))
print("go", flush=True)
server.acquire()
time.sleep(60)
"""

CLI = "import sys; from likeness.cli.main import app; sys.exit(app())"


def _env(home: Path) -> dict[str, str]:
    """This home's embedded server, whatever the environment of the test run says."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIKENESS_")}
    return {**env, "LIKENESS_HOME": str(home), "LIKENESS_SCAN__WORKERS": "2"}


def _postgres_of(data: Path) -> list[psutil.Process]:
    """Live postgres processes (postmaster and backends) serving ``data``: they all run in it."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and proc.status() != psutil.STATUS_ZOMBIE and proc.cwd() == str(data):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _wait_until_none_serve(data: Path) -> None:
    """A SIGKILLed postmaster's backends notice and exit by themselves, a moment later."""
    deadline = time.monotonic() + 60
    while _postgres_of(data):
        assert time.monotonic() < deadline, "backends outlived their postmaster"
        time.sleep(0.05)


def _alive(proc: psutil.Process) -> bool:
    """Still running (the same process: pid and start time), and not a zombie waiting to be reaped."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class User:
    """A command using the store in a subprocess (``likeness subjects list`` that takes its time)."""

    def __init__(self, home: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", USER, str(home)],
            env=_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        assert self.stdout.readline().strip() == "ready", "the user command could not open the store"

    def query(self) -> str:
        self.stdin.write("query\n")
        self.stdin.flush()
        return self.stdout.readline().strip()

    def finish(self) -> int:
        self.stdin.close()
        return self.proc.wait(timeout=120)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(autouse=True)
def _no_server_left(tmp_path: Path) -> Iterator[None]:
    """Whatever a failing test leaves running in its folder is stopped afterwards."""
    yield
    folder = str(tmp_path.resolve())
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and cmdline[1:2] == ["-D"] and cmdline[2].startswith(folder):
            proc.send_signal(signal.SIGQUIT)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data directory in a home of its own."""
    return (tmp_path / "home" / "pg").resolve()


def _home_of(data: Path) -> Path:
    return data.parent


@pytest.mark.parametrize("long_home", [False, True], ids=["short-home", "home-of-150-characters"])
def test_the_socket_is_private_and_login_needs_the_password(tmp_path: Path, long_home: bool) -> None:
    home = tmp_path / ("h" * max(1, 160 - len(str(tmp_path))) if long_home else "home")
    assert len(str(home)) >= 150 or not long_home
    server = embedded.server(home / "pg")
    endpoint = server.acquire()
    try:
        _assert_private(server, endpoint, long_home)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(**{**endpoint.conninfo(), "password": ""})
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(**{**endpoint.conninfo(), "password": "not-the-password"})
        with psycopg.connect(**endpoint.conninfo()) as conn:
            assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)  # no TCP at all
    finally:
        server.release()
    assert _postgres_of(server.data) == []
    assert not endpoint.socket_dir.exists() or endpoint.socket_dir == server.data  # a private one is removed


def _assert_private(server: embedded.EmbeddedServer, endpoint: embedded.Endpoint, long_home: bool) -> None:
    info = server.running()
    assert info is not None and info.socket_dir == endpoint.socket_dir
    socket_dir = endpoint.socket_dir.stat()
    assert stat.S_IMODE(socket_dir.st_mode) == 0o700
    assert socket_dir.st_uid == os.geteuid()
    assert (endpoint.socket_dir / f".s.PGSQL.{endpoint.port}").is_socket()
    # The data directory when the socket path fits in a socket address, else a private one of its own.
    assert (endpoint.socket_dir == server.data) is embedded._socket_fits(server.data)
    assert endpoint.socket_dir != server.data or not long_home
    password_file = (server.data / embedded.PASSWORD_FILE).stat()
    assert stat.S_IMODE(password_file.st_mode) == 0o600


def _modes(paths: list[Path]) -> dict[Path, tuple[int, int, int]]:
    return {p: (p.stat().st_mode, p.stat().st_uid, p.stat().st_gid) for p in paths}


def test_nothing_outside_the_data_directory_changes(tmp_path: Path) -> None:
    """As root (how tests and CI run here) PostgreSQL runs in a user namespace: no parent folder is opened up,
    pgserver's binaries keep their modes, no system user is created. As a normal user it holds all the same."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    home = private / "nested" / "home"
    home.mkdir(parents=True)
    binaries = embedded._binary("postgres").parents[1]
    watched = [home, *home.parents, binaries, *binaries.iterdir(), *(binaries / "bin").iterdir()]
    watched += list((binaries / "lib").iterdir())
    before, users = _modes(watched), sorted(p.pw_name for p in pwd.getpwall())
    server = embedded.server(home / "pg")
    endpoint = server.acquire()
    try:
        with psycopg.connect(**endpoint.conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.release()
    assert _modes(watched) == before
    assert sorted(p.pw_name for p in pwd.getpwall()) == users
    assert stat.S_IMODE(server.data.stat().st_mode) == 0o700


def test_a_first_start_killed_at_random_moments_recovers(data: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    for attempt in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-c", FIRST_START, str(data)],
            env=_env(_home_of(data)),
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "go"
        time.sleep(rng.uniform(0, 1.5))
        # Half the time the whole process group (initdb dies with it), half the time the process alone.
        os.killpg(proc.pid, signal.SIGKILL) if attempt % 2 else proc.kill()
        proc.wait()
    server = embedded.server(data)
    endpoint = server.acquire()
    try:
        with psycopg.connect(**endpoint.conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,), f"seed {seed}"
        assert list(data.parent.glob(".pg-init-*")) == [], "leftovers of killed starts were not removed"
    finally:
        server.release()
    assert _postgres_of(data) == [], f"seed {seed}"


def test_a_killed_command_leaves_the_server_to_the_next_command_which_stops_it(data: Path) -> None:
    killed = User(_home_of(data))
    assert killed.query() == "42"
    postmaster = embedded.server(data).running()
    assert postmaster is not None
    killed.kill()
    # Its shared lock died with it; the server runs on (another command may be using it) ...
    assert embedded.server(data).running() == postmaster
    following = User(_home_of(data))
    assert following.query() == "42"
    assert embedded.server(data).running() == postmaster  # ... and the next command joins it, ...
    assert following.finish() == 0
    assert _postgres_of(data) == []  # ... and, the last live user, stops it as it exits.


def test_the_first_of_two_users_to_leave_keeps_the_server_for_the_second(data: Path) -> None:
    first, second = User(_home_of(data)), User(_home_of(data))
    assert first.finish() == 0
    assert second.query() == "42"
    assert embedded.server(data).running() is not None
    assert second.finish() == 0
    assert _postgres_of(data) == []


def test_a_stale_pid_file_does_not_stop_the_next_start(data: Path) -> None:
    """A postmaster SIGKILLed (pid file left behind), then a pid file whose pid another program now has."""
    server = embedded.server(data)
    endpoint = server.acquire()
    info = server.running()
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    _wait_until_none_serve(data)
    server.release()
    assert (data / "postmaster.pid").exists()
    endpoint = server.acquire()
    with psycopg.connect(**endpoint.conninfo()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.release()
    lines = (data / "postmaster.pid").read_text().splitlines() if (data / "postmaster.pid").exists() else []
    assert lines == [], "a clean stop removes the pid file"
    with subprocess.Popen(["sleep", "60"]) as other:
        (data / "postmaster.pid").write_text(f"{other.pid}\n{data}\n0\n{embedded.PORT}\n{data}\n\n0 0\nready\n")
        try:
            endpoint = server.acquire()
            with psycopg.connect(**endpoint.conninfo()) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            server.release()
        finally:
            other.kill()
    assert _postgres_of(data) == []


def test_a_cluster_made_with_trust_login_gets_a_password(data: Path) -> None:
    """Homes made by earlier versions (pgserver: trust login, no password): the first start sets one."""
    data.parent.mkdir(parents=True)
    initdb = [*embedded._as_owner(), str(embedded._binary("initdb")), "-D", str(data), "-U", "postgres"]
    subprocess.run([*initdb, "--auth=trust", "--encoding=utf8"], check=True, capture_output=True)
    server = embedded.server(data)
    endpoint = server.acquire()
    try:
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(**{**endpoint.conninfo(), "password": ""})
        with psycopg.connect(**endpoint.conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert stat.S_IMODE((data / "pg_hba.conf").stat().st_mode) == 0o600
    finally:
        server.release()
    endpoint = server.acquire()  # and the next start uses it
    with psycopg.connect(**endpoint.conninfo()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.release()


def _pictures(folder: Path, count: int = 12) -> None:
    for i in range(count):
        pixels = images.resize(images.astronaut() if i % 2 else images.grace_hopper(), 0.7 + i * 0.05)
        images.write(folder / f"face_{i}.jpg", pixels, quality=60 + i * 2)


def _media_count(server: embedded.EmbeddedServer) -> int:
    endpoint = server.endpoint()
    if endpoint is None:
        return 0
    with psycopg.connect(**endpoint.conninfo()) as conn:
        row = conn.execute("SELECT CASE WHEN to_regclass('media') IS NULL THEN 0 ELSE 1 END").fetchone()
        if not row or not row[0]:
            return 0
        counted = conn.execute("SELECT count(*) FROM media").fetchone()
        return int(counted[0]) if counted else 0


def _workers(cli: psutil.Process) -> list[psutil.Process]:
    """The CLI's analysis workers (multiprocessing children; postgres runs in a session of its own)."""
    try:
        return [c for c in cli.children(recursive=True) if "multiprocessing" in " ".join(c.cmdline())]
    except psutil.Error:
        return []


def test_after_a_killed_scan_nothing_survives_the_next_command(data: Path, tmp_path: Path) -> None:
    _pictures(tmp_path / "pictures")
    env = _env(_home_of(data))
    scan = subprocess.Popen(
        [sys.executable, "-c", CLI, "scan", str(tmp_path / "pictures")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cli, server, deadline = psutil.Process(scan.pid), embedded.server(data), time.monotonic() + 300
    while not (_workers(cli) and _media_count(server) >= 1):  # it analyses, and has stored some
        assert scan.poll() is None, "the scan ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = _workers(cli)
    scan.kill()  # the CLI alone, as the OOM killer would: not its process group
    scan.wait()
    assert server.running() is not None
    following = subprocess.run([sys.executable, "-c", CLI, "subjects", "list"], env=env, capture_output=True)
    assert following.returncode == 0, following.stderr
    assert _postgres_of(data) == []
    # The worker pool's half (services/): its workers must not outlive the CLI that was killed.
    assert [w.pid for w in workers if _alive(w)] == []


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a user namespace")
def test_as_root_without_user_namespaces_it_refuses_with_the_ways_out(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(embedded, "_owner_prefix", None)
    monkeypatch.setenv("PATH", str(tmp_path))  # no unshare to be found
    with pytest.raises(ConfigurationError, match="Run likeness as a normal user, or set LIKENESS_DATABASE_URL"):
        embedded.server(tmp_path / "home" / "pg").acquire()
    assert list((tmp_path / "home").iterdir()) == [tmp_path / "home" / "pg.start.lock"]  # nothing else made
