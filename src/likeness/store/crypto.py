"""Encryption at rest and crypto-shredding: one data key per owner of personal data, wrapped by a master key.

Why per-owner keys: withdrawing a person deletes their rows, but PostgreSQL keeps what it wrote (WAL segments,
dead heap tuples, backups, dumps), and one master key beside the data would still open every copy. So each owner
(a subject, an NCII submission) has a data key of their own; everything personal about them (name, face crop,
reference embeddings and centroid, allowed domains, submission label, the personal part of audit records) is
sealed with it (Fernet: AES-128-CBC + HMAC-SHA256). Withdrawal destroys the key, and every copy of those rows,
wherever PostgreSQL or a backup put it, stays unreadable, to the holder of the master key too.

Where data keys live: never in PostgreSQL. A wrapped key written to a table is written to the WAL as well, where
the master key would unwrap it long after the row is gone. A ``KeyStore`` holds them; ``FileKeyring`` keeps one
file per key in a directory (LIKENESS_KEYRING, default LIKENESS_HOME/keyring), wrapped by the master key, written
atomically and fsynced, destroyed by overwrite, unlink and an fsync of the directory. Deployments with several
machines share that directory, or implement ``KeyStore`` over a KMS.

A new key is *pending* until the transaction that first used it commits (``bind`` installs the session hooks): a
rollback shreds it at once, and a crash leaves a pending key for the start-up sweep (store/keys.py), so a key never
outlives the rows it sealed, even rows that were never committed but reached the WAL.

The master key: LIKENESS_SECRET_KEY, LIKENESS_KEY_FILE (keep it off the data volume), or a key file created once in
LIKENESS_HOME with mode 0600. Two keys are derived from it (HKDF-SHA256) that the database never sees: the audit
chain's MAC key and the key of the submission-label index.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from likeness.errors import ConfigurationError
from likeness.settings import Settings

_AUDIT_INFO = b"likeness/audit-chain/v1"
_LABEL_INFO = b"likeness/submission-label-index/v1"
# The label index is deliberately short: a lookup decrypts the few labels of one bucket, and after withdrawal a
# bucket number left in the WAL only tells whoever holds the master key that a guessed label is 1 in 256 likely.
LABEL_INDEX_BITS = 8
_BOX = "likeness.box"
_PENDING = "likeness.pending_keys"
_KEY_ID = re.compile(r"[0-9a-f]{32}")


class KeyStore(Protocol):
    """Where owners' data keys live, outside the database. Implementations: ``FileKeyring``; a KMS at scale."""

    def create(self) -> tuple[str, bytes]:
        """A new Fernet data key, durable but pending: (key id, key)."""

    def commit(self, key_id: str) -> None:
        """The transaction that first used the key committed: it is no longer an orphan candidate."""

    def get(self, key_id: str) -> bytes | None:
        """The key, pending or committed; None once shredded."""

    def shred(self, key_id: str) -> None:
        """Destroy the key for good; a key already gone is no error."""

    def pending(self, older_than_s: float) -> list[str]:
        """Pending keys created more than ``older_than_s`` seconds ago."""


class FileKeyring:
    """One file per data key, wrapped by the master key: ``<id>.pending`` until committed, then ``<id>.key``."""

    def __init__(self, directory: Path, master: Fernet) -> None:
        self.directory = directory
        self._master = master

    def create(self) -> tuple[str, bytes]:
        key_id, key = secrets.token_hex(16), Fernet.generate_key()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_new(self._path(key_id, "pending"), self._master.encrypt(key))
        _fsync_dir(self.directory)
        return key_id, key

    def commit(self, key_id: str) -> None:
        pending = self._path(key_id, "pending")
        if pending.exists():
            pending.replace(self._path(key_id, "key"))
            _fsync_dir(self.directory)

    def get(self, key_id: str) -> bytes | None:
        for state in ("key", "pending"):
            try:
                wrapped = self._path(key_id, state).read_bytes()
            except FileNotFoundError:
                continue
            return self._unwrap(wrapped, key_id)
        return None

    def shred(self, key_id: str) -> None:
        gone = [_overwrite_and_unlink(self._path(key_id, state)) for state in ("pending", "key")]
        if any(gone):
            _fsync_dir(self.directory)

    def pending(self, older_than_s: float) -> list[str]:
        if not self.directory.is_dir():
            return []
        cutoff = time.time() - older_than_s
        return [p.stem for p in self.directory.glob("*.pending") if _stat_mtime(p) <= cutoff]

    def check_master(self) -> None:
        """Fail at start, not on first use, when the master key is not the one that wrapped this keyring."""
        first = next(iter(sorted(self.directory.glob("*.key"))), None) if self.directory.is_dir() else None
        if first is not None:
            self._unwrap(first.read_bytes(), first.stem)

    def _unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        try:
            return self._master.decrypt(wrapped)
        except InvalidToken as exc:
            raise ConfigurationError(
                f"the master key does not open key {key_id} in {self.directory}: "
                "LIKENESS_SECRET_KEY / LIKENESS_KEY_FILE is not the key this keyring was made with"
            ) from exc

    def _path(self, key_id: str, state: str) -> Path:
        if not _KEY_ID.fullmatch(key_id):  # ids come from the database: never let one name another file
            raise ConfigurationError(f"malformed key id {key_id[:40]!r} in the database")
        return self.directory / f"{key_id}.{state}"


class DataKey:
    """One owner's key. Rows store ``id``; the key itself never reaches the database."""

    def __init__(self, key_id: str, key: bytes) -> None:
        self.id = key_id
        self._fernet = Fernet(key)

    def seal(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def open(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(bytes(token))
        except InvalidToken as exc:
            raise ConfigurationError(f"data under key {self.id} does not open: keyring and database differ") from exc

    def seal_text(self, plain: str) -> bytes:
        return self.seal(plain.encode())

    def open_text(self, token: bytes) -> str:
        return self.open(token).decode()

    def seal_json(self, value: Any) -> bytes:
        return self.seal(json.dumps(value, sort_keys=True).encode())

    def open_json(self, token: bytes) -> Any:
        return json.loads(self.open(token))

    def seal_vector(self, vector: np.ndarray) -> bytes:
        """A biometric template: float32, little-endian, sealed like any personal data."""
        return self.seal(np.asarray(vector, dtype="<f4").tobytes())

    def open_vector(self, token: bytes) -> np.ndarray:
        return np.frombuffer(self.open(token), dtype="<f4").astype(np.float32)


class Box:
    """The master key and what hangs off it: owners' data keys (in a ``KeyStore``) and the derived keys."""

    def __init__(self, master: bytes, keys: KeyStore, checkpoint: Path) -> None:
        self._legacy = _fernet(master, "the master key")
        self.keys = keys
        self.checkpoint = checkpoint  # the audit chain's head, outside the database (store/audit.py)
        raw = base64.urlsafe_b64decode(master)
        self.audit_key = _derive(raw, _AUDIT_INFO)
        self._label_key = _derive(raw, _LABEL_INFO)

    def new_key(self, session: Session) -> DataKey:
        """A data key for a new owner, shredded again if ``session`` rolls back."""
        key_id, key = self.keys.create()
        session.info.setdefault(_PENDING, []).append(key_id)
        return DataKey(key_id, key)

    def key(self, key_id: str | None) -> DataKey | None:
        """The owner's key, or None when it was shredded (the owner reads as withdrawn)."""
        if key_id is None:
            return None
        key = self.keys.get(key_id)
        return DataKey(key_id, key) if key is not None else None

    def shred(self, key_id: str | None) -> None:
        if key_id is not None:
            self.keys.shred(key_id)

    def legacy_open(self, token: bytes) -> bytes:
        """Data sealed with the master key itself, before migration 0008; re-sealed under owners' keys at start."""
        try:
            return self._legacy.decrypt(bytes(token))
        except InvalidToken as exc:
            raise ConfigurationError("the master key does not open data stored before migration 0008") from exc

    def label_index(self, label: str) -> int:
        digest = hmac.new(self._label_key, label.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:2], "big") >> (16 - LABEL_INDEX_BITS)


def load_box(settings: Settings) -> Box:
    keyring_dir = settings.keyring or settings.home / "keyring"
    master = _master_key(settings)
    keyring = FileKeyring(keyring_dir, _fernet(master, "the master key"))
    keyring.check_master()
    return Box(master, keyring, settings.audit_checkpoint or settings.home / "audit-head.json")


def bind(sessions: sessionmaker[Session], box: Box) -> None:
    """Every session of this store carries the box; pending keys are committed or shredded with the transaction."""
    sessions.configure(info={_BOX: box})
    event.listen(sessions, "after_commit", _commit_pending)
    event.listen(sessions, "after_rollback", _shred_pending)


def box_of(session: Session) -> Box:
    box = session.info.get(_BOX)
    if not isinstance(box, Box):
        raise ConfigurationError("this session was not opened by a Store: it has no keys")
    return box


def _commit_pending(session: Session) -> None:
    box = box_of(session)
    for key_id in session.info.pop(_PENDING, []):
        box.keys.commit(key_id)


def _shred_pending(session: Session) -> None:
    box = box_of(session)
    for key_id in session.info.pop(_PENDING, []):
        box.keys.shred(key_id)


def _master_key(settings: Settings) -> bytes:
    if settings.secret_key:
        return _checked(settings.secret_key.strip().encode(), "LIKENESS_SECRET_KEY")
    if settings.key_file:
        return _read_key_file(settings.key_file)
    return _key_file(settings.home / "secret.key")


def _read_key_file(path: Path) -> bytes:
    try:
        return _checked(path.read_bytes().strip(), f"LIKENESS_KEY_FILE ({path})")
    except FileNotFoundError as exc:
        raise ConfigurationError(
            f'LIKENESS_KEY_FILE: no file {path}; make one with: python -c "from cryptography.fernet import Fernet; '
            f'print(Fernet.generate_key().decode())" > {path} && chmod 600 {path}'
        ) from exc
    except OSError as exc:
        raise ConfigurationError(f"LIKENESS_KEY_FILE: cannot read {path}: {exc.strerror or exc}") from exc


def _key_file(path: Path) -> bytes:
    if path.exists():
        return _checked(path.read_bytes().strip(), f"the key file {path}")
    key = Fernet.generate_key()
    # O_EXCL: two processes racing to create the key must not end up with different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _checked(path.read_bytes().strip(), f"the key file {path}")
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def _checked(key: bytes, where: str) -> bytes:
    _fernet(key, where)
    return key


def _fernet(key: bytes, where: str) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{where} is not a Fernet key (32 bytes in url-safe base64, 44 characters)") from exc


def _derive(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _overwrite_and_unlink(path: Path) -> bool:
    """Overwrite in place before unlinking, so the blocks the file leaves behind hold noise (on file systems
    that write in place; copy-on-write file systems and SSDs may keep old blocks: see the README)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    with os.fdopen(fd, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        handle.write(secrets.token_bytes(max(size, 1)))
        handle.flush()
        os.fsync(handle.fileno())
    path.unlink(missing_ok=True)
    return True


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stat_mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")
