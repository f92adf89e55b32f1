"""The embedded PostgreSQL: a private server in LIKENESS_HOME, started on first use and stopped when no live
process uses it any more.

Only pgserver's binaries are used (initdb, postgres); its Python management is not, because of what it does:
trust login on a socket that a long home path sends to a shared 0777 directory, permissions opened up on every
parent folder and a system user created when run as root, a first start killed during initdb that never starts
again, and users counted in a pid file that a SIGKILLed process never leaves. Here instead:

- Private: no TCP (``listen_addresses=''``); the socket lives in a directory only we can enter (the data
  directory, 0700, when the socket path fits in a unix socket address, else a fresh ``mkdtemp`` directory); login
  needs the superuser's password (SCRAM), made once and kept in the data directory (0600). Clients find the
  socket directory and port in ``postmaster.pid`` (lines 5 and 4).
- Crash-safe first start: initdb runs in a temporary directory beside the target, which is renamed into place
  with its password once complete; a killed start leaves only that directory, removed by the next start.
- As root: postgres refuses to run as root, so initdb and postgres run in a user namespace (util-linux
  ``unshare``) where they see themselves as an ordinary uid, while their files stay root's outside. No
  permission outside the data directory is touched and no user is created; without user namespaces we refuse.
- Lifetime by ``flock``, which the kernel drops when a process dies, however it dies: every process using the
  server holds a shared lock on ``<data>.users.lock``; starting and stopping happen under an exclusive lock on
  ``<data>.start.lock``. A process that is done drops its shared lock and, if it can then take the users' lock
  exclusively (nobody else holds it), stops the server (fast shutdown). So a server whose users were killed is
  stopped by the next process that finishes with it.
- postgres runs in its own session: a Ctrl-C or a kill of the command's process group never reaches it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib.util
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from sqlalchemy.engine import URL

from likeness.errors import ConfigurationError, EmbeddedServerFailed

SUPERUSER = "postgres"
PORT = 5432  # only names the socket file (.s.PGSQL.5432): there is no TCP listener to clash with
PASSWORD_FILE = "likeness.password"
LOG_FILE = "postgres.log"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0
_SOCKET_PREFIX = "likeness-pg-"
# sun_path holds 108 bytes on Linux, 104 on macOS and the BSDs, the final NUL included.
_SOCKET_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
_NAMESPACE_ID = 1000  # the uid and gid postgres sees itself as inside its user namespace when we are root
_HBA = "# Written by likeness: the local socket only, with the superuser's password.\nlocal all all scram-sha-256\n"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to reach a running embedded server. Holds the password: never log its URL."""

    socket_dir: Path
    port: int
    password: str = field(repr=False)
    user: str = SUPERUSER

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg driver) for ``database`` on this server's socket."""
        query = {"host": str(self.socket_dir), "port": str(self.port)}
        url = URL.create("postgresql+psycopg", self.user, self.password, database=database, query=query)
        return url.render_as_string(hide_password=False)

    def conninfo(self, database: str = "postgres") -> dict[str, str]:
        """Keyword arguments for ``psycopg.connect``."""
        host, port = str(self.socket_dir), str(self.port)
        return {"host": host, "port": port, "user": self.user, "password": self.password, "dbname": database}


@dataclass(frozen=True)
class Pidfile:
    """What postgres says about itself in ``postmaster.pid`` (written in stages while it starts)."""

    pid: int
    port: int
    socket_dir: Path | None
    status: str

    @classmethod
    def read(cls, data: Path) -> Pidfile | None:
        try:
            lines = (data / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), (int(lines[3]) if len(lines) > 3 else PORT)
        except (FileNotFoundError, IndexError, ValueError):
            return None  # absent, or caught half-written
        socket_dir = Path(lines[4].strip()) if len(lines) > 4 and lines[4].strip() else None
        return cls(pid, port, socket_dir, lines[7].strip() if len(lines) > 7 else "starting")


class EmbeddedServer:
    """One data directory's server as this process sees it: ``acquire`` joins it (starting it when needed) and
    each ``acquire`` is matched by a ``release``; the last release of the last live process stops it."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.log = data / LOG_FILE
        self._start_lock = data.with_name(data.name + ".start.lock")
        self._users_lock = data.with_name(data.name + ".users.lock")
        self._users_fd: int | None = None
        self._count = 0
        self._endpoint: Endpoint | None = None
        self._children: list[subprocess.Popen[bytes]] = []
        self._mutex = threading.Lock()

    def acquire(self) -> Endpoint:
        """Join the server, starting it if nobody runs it; this process is one of its users from now on."""
        with self._mutex:
            if self._count == 0:
                self.data.parent.mkdir(parents=True, exist_ok=True)
                with _locked(self._start_lock, fcntl.LOCK_EX) as start_fd:
                    self._endpoint = self._ensure_running(start_fd)
                    # Still under the start lock: no stopper can be between its check and its stop now.
                    self._users_fd = _open_lock(self._users_lock)
                    fcntl.flock(self._users_fd, fcntl.LOCK_SH)
            self._count += 1
            assert self._endpoint is not None
            return self._endpoint

    def release(self) -> None:
        """Leave; when no other live process holds the users' lock, stop the server."""
        with self._mutex:
            if self._count == 0:
                return
            self._count -= 1
            if self._count == 0:
                self._leave()

    def close(self) -> None:
        """Leave whatever this process still holds (at exit)."""
        with self._mutex:
            if self._count:
                self._count = 0
                self._leave()

    def running(self) -> Pidfile | None:
        """The pid file of this data directory's live postmaster, or None (none, or a stale file)."""
        info = Pidfile.read(self.data)
        return info if info is not None and self._is_postmaster(info.pid) else None

    def endpoint(self) -> Endpoint | None:
        """How to reach the running server without becoming one of its users (tests, an operator's psql)."""
        info, password = self.running(), _read_password(self.data)
        if info is None or info.socket_dir is None or password is None:
            return None
        return Endpoint(info.socket_dir, info.port, password)

    def _leave(self) -> None:
        fd, self._users_fd = self._users_fd, None
        assert fd is not None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            # BlockingIOError: another live process still holds the users' lock, so the server stays up.
            with _locked(self._start_lock, fcntl.LOCK_EX), contextlib.suppress(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._stop()
        finally:
            os.close(fd)

    def forget_after_fork(self) -> None:
        """In a forked child: the parent's users' lock is the parent's (closing our copy keeps it held)."""
        if self._users_fd is not None:
            os.close(self._users_fd)
        self._users_fd, self._count, self._children = None, 0, []
        self._mutex = threading.Lock()

    # Starting, under the start lock

    def _ensure_running(self, start_fd: int) -> Endpoint:
        if self.running() is None:
            _as_owner()  # as root without user namespaces: refuse before making anything (joining needs no probe)
        for leftover in self.data.parent.glob(f".{self.data.name}-init-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # a first start killed during initdb
        if not (self.data / "PG_VERSION").is_file():
            self._initdb(start_fd)
        info = self._start()
        assert info.socket_dir is not None
        password = _read_password(self.data)
        if password is None:
            password = self._adopt(info)
        return Endpoint(info.socket_dir, info.port, password)

    def _initdb(self, start_fd: int) -> None:
        """A new cluster in a temporary directory, renamed into place with its password once complete."""
        if self.data.exists():
            if any(self.data.iterdir()):
                raise ConfigurationError(f"{self.data} is not a PostgreSQL data directory; move it away")
            self.data.rmdir()
        staging = Path(tempfile.mkdtemp(prefix=f".{self.data.name}-init-", dir=self.data.parent))
        password = secrets.token_urlsafe(32)
        # C collation: byte order, the same on every machine and immune to the host's collation updates.
        args = ["-D", str(staging), "-U", SUPERUSER, "--pwfile=/dev/stdin", "--encoding=utf8", "--locale=C"]
        args += ["--auth=scram-sha-256", "--auth-local=scram-sha-256"]
        # initdb inherits the start lock: if we are killed, the next start waits for initdb to end, then cleans up.
        done = _run([*_as_owner(), str(_binary("initdb")), *args], password, pass_fds=(start_fd,))
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise EmbeddedServerFailed(f"initdb failed in {self.data.parent}: {_tail(done.stderr)}")
        _write_private(staging / PASSWORD_FILE, password)
        staging.rename(self.data)

    def _start(self) -> Pidfile:
        """Join a live postmaster (waiting until it is ready), or launch one."""
        for attempt in range(3):  # a postmaster left by a killed start may still be writing its pid file
            time.sleep(0.5 * attempt)  # or the backends of a killed one still be leaving
            info = Pidfile.read(self.data)
            if info is not None and self._is_postmaster(info.pid):
                if info.status == "stopping":
                    self._wait_gone(info.pid, STOP_TIMEOUT_S)
                    continue
                pid = info.pid
            else:
                pid = self._launch(info)
            ready = self._wait_ready(pid)
            if ready is not None:
                return ready
        raise EmbeddedServerFailed(f"PostgreSQL did not start; its log ({self.log}) ends: {self._log_tail()}")

    def _launch(self, stale: Pidfile | None) -> int:
        if stale is not None:
            self._forget_stale(stale)
        socket_dir = _quote_guc(self._socket_dir())
        args = ["-D", str(self.data), "-p", str(PORT), "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700"]
        args += ["-c", f"unix_socket_directories={socket_dir}"]
        with open(self.log, "ab") as log:
            proc = subprocess.Popen(
                [*_as_owner(), str(_binary("postgres")), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C or a killpg of the command never reaches the server
            )
        self._children.append(proc)
        return proc.pid

    def _socket_dir(self) -> Path:
        """The data directory when the socket path fits (and only we can enter it), else a fresh private one."""
        if _socket_fits(self.data) and (self.data.stat().st_mode & 0o077) == 0:
            return self.data
        for base in dict.fromkeys([tempfile.gettempdir(), "/tmp"]):
            if _socket_fits(Path(base) / (_SOCKET_PREFIX + "x" * 8)):
                return Path(tempfile.mkdtemp(prefix=_SOCKET_PREFIX, dir=base))  # mode 0700, ours
        raise ConfigurationError("no directory is short enough for the database socket; set TMPDIR=/tmp")

    def _forget_stale(self, stale: Pidfile) -> None:
        """A pid file whose postmaster is gone: remove its private socket directory. A pid that now belongs to
        another program would make postgres refuse to start, so that file goes too; a dead pid postgres handles
        itself (with its shared-memory check against surviving backends)."""
        self._remove_socket_dir(stale.socket_dir)
        with contextlib.suppress(psutil.Error):  # psutil.NoSuchProcess: dead, postgres's case
            if psutil.Process(stale.pid).status() != psutil.STATUS_ZOMBIE:
                (self.data / "postmaster.pid").unlink(missing_ok=True)

    def _wait_ready(self, pid: int) -> Pidfile | None:
        """The pid file once ``pid`` accepts connections; None if it died first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = Pidfile.read(self.data)
            if info is not None and info.pid == pid and info.status == "ready" and info.socket_dir is not None:
                return info
            if not self._is_postmaster(pid):
                return None
            time.sleep(0.05)
        raise EmbeddedServerFailed(f"PostgreSQL was not ready after {START_TIMEOUT_S:.0f} s; see {self.log}")

    def _adopt(self, info: Pidfile) -> str:
        """A cluster made before passwords (pgserver's trust login): give the superuser a password, then make
        the socket ask for it. Until then the socket is already in a directory only we can enter."""
        import psycopg
        from psycopg import sql

        password = secrets.token_urlsafe(32)
        assert info.socket_dir is not None
        try:
            conn = psycopg.connect(host=str(info.socket_dir), port=info.port, user=SUPERUSER, autocommit=True)
        except psycopg.OperationalError as exc:
            raise ConfigurationError(
                f"the embedded database in {self.data} has no {PASSWORD_FILE} and asks for a password; "
                "restore that file, or move the directory away to start afresh"
            ) from exc
        with conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(SUPERUSER), sql.Literal(password)))
            _write_private(self.data / PASSWORD_FILE, password)  # before pg_hba: a kill between leaves trust
            _write_private(self.data / "pg_hba.conf", _HBA)
            conn.execute("SELECT pg_reload_conf()")
        return password

    # Stopping, under the start lock with the users' lock exclusive

    def _stop(self) -> None:
        info = self.running()
        if info is None:
            return
        with contextlib.suppress(ProcessLookupError):  # it may end by itself meanwhile
            os.kill(info.pid, signal.SIGINT)  # fast shutdown: open transactions roll back, a checkpoint, exit
            if not self._wait_gone(info.pid, STOP_TIMEOUT_S):
                os.kill(info.pid, signal.SIGQUIT)  # immediate: the next start recovers from the WAL
                self._wait_gone(info.pid, 10.0)
        self._remove_socket_dir(info.socket_dir)

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._is_postmaster(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def _remove_socket_dir(self, path: Path | None) -> None:
        """Only a private directory we made: never the data directory, never one we do not own."""
        if path is None or path == self.data or not path.name.startswith(_SOCKET_PREFIX):
            return
        with contextlib.suppress(OSError):
            info = path.lstat()
            if info.st_uid == os.geteuid() and stat.S_ISDIR(info.st_mode):
                shutil.rmtree(path, ignore_errors=True)

    def _is_postmaster(self, pid: int) -> bool:
        """``pid`` is a live postgres serving this data directory (not a zombie, not a reused pid)."""
        for child in self._children:  # reap the postmasters we launched once they have exited
            child.poll()
        self._children = [c for c in self._children if c.returncode is None]
        try:
            proc = psutil.Process(pid)
            return proc.status() != psutil.STATUS_ZOMBIE and str(self.data) in proc.cmdline()
        except psutil.Error:
            return False

    def _log_tail(self) -> str:
        try:
            return _tail(self.log.read_text(errors="replace"))
        except OSError:
            return "(no log)"


_servers: dict[Path, EmbeddedServer] = {}
_servers_lock = threading.Lock()


def server(data: Path) -> EmbeddedServer:
    """This process's handle on the server of data directory ``data`` (one per directory)."""
    data = data.expanduser().resolve()
    with _servers_lock:
        if data not in _servers:
            _servers[data] = EmbeddedServer(data)
        return _servers[data]


def _close_all() -> None:
    for each in list(_servers.values()):
        try:
            each.close()
        except (OSError, EmbeddedServerFailed) as exc:  # at exit: say so, never a traceback
            print(f"likeness: could not stop the embedded database in {each.data}: {exc}", file=sys.stderr)


def _forget_all_after_fork() -> None:
    for each in _servers.values():
        each.forget_after_fork()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_forget_all_after_fork)


# Helpers


def _binary(name: str) -> Path:
    """pgserver's PostgreSQL binaries, found without importing pgserver (whose import has side effects)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError("the embedded database needs the pgserver package; or set LIKENESS_DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


_owner_prefix: list[str] | None = None


def _as_owner() -> list[str]:
    """The command prefix that runs a PostgreSQL binary as the owner of its files: nothing for a normal user; as
    root, a user namespace in which it is uid 1000 while its files stay root's (postgres refuses root)."""
    global _owner_prefix
    if _owner_prefix is None:
        _owner_prefix = [] if os.geteuid() != 0 else _namespace_prefix()
    return _owner_prefix


def _namespace_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    prefix = [unshare or "unshare", "--user", f"--map-user={_NAMESPACE_ID}", f"--map-group={_NAMESPACE_ID}"]
    probe = _run([*prefix, str(_binary("postgres")), "--version"], "") if unshare else None
    if probe is None or probe.returncode != 0:
        why = _tail(probe.stderr) if probe is not None else "no unshare command"
        raise ConfigurationError(
            "the embedded database cannot run as root here: PostgreSQL refuses root, and running it in a user "
            f"namespace (util-linux unshare >= 2.38) failed: {why}. Run likeness as a normal user, or set "
            "LIKENESS_DATABASE_URL to a PostgreSQL server with pgvector."
        )
    return prefix


def _run(cmd: list[str], stdin: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, input=stdin, capture_output=True, text=True, pass_fds=pass_fds, check=False)
    except OSError as exc:
        return subprocess.CompletedProcess(cmd, 127, "", str(exc))


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def _locked(path: Path, how: int) -> Iterator[int]:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, how)
        yield fd
    finally:
        os.close(fd)


def _socket_fits(directory: Path) -> bool:
    return len(os.fsencode(directory / f".s.PGSQL.{PORT}")) <= _SOCKET_PATH_MAX


def _quote_guc(path: Path) -> str:
    """One entry of a GUC list (unix_socket_directories): double-quoted, so commas and spaces survive."""
    return '"' + str(path).replace('"', '""') + '"'


def _read_password(data: Path) -> str | None:
    try:
        return (data / PASSWORD_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with a file only the owner can read."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:]) or "(no output)"
