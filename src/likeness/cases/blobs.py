"""The evidence store: blobs sealed under their case's data key, addressed by the SHA-256 of what is stored.

Why content-addressed over the sealed bytes: a blob is checked on every read (a flipped bit on disk or in a copy
is an error, never quietly handed over as evidence), and the address says nothing about the plaintext, whose
SHA-256 only the signed manifest records. ``BlobStore`` is the seam for an S3-compatible store: put/get/has over
opaque addresses; ``FileBlobStore`` keeps them under LIKENESS_HOME/evidence, two hex characters a folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Protocol

from likeness.errors import EvidenceAltered, NotFound
from likeness.store.crypto import DataKey

_ADDRESS = re.compile(r"[0-9a-f]{64}")


class BlobStore(Protocol):
    def put(self, data: bytes) -> str:
        """Store ``data`` (already sealed); returns its address, the SHA-256 of ``data``."""

    def get(self, address: str) -> bytes:
        """The stored bytes, checked against ``address``; NotFound when absent, EvidenceAltered when altered."""

    def has(self, address: str) -> bool: ...


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        address = hashlib.sha256(data).hexdigest()
        path = self._path(address)
        if path.exists():
            return address
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{address}.{os.getpid()}.part")
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)  # atomic: a reader sees the whole blob or none
        return address

    def get(self, address: str) -> bytes:
        try:
            data = self._path(address).read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"evidence blob {address} is not in {self.root}") from exc
        if hashlib.sha256(data).hexdigest() != address:
            raise EvidenceAltered(f"evidence blob {address} in {self.root} was altered: its SHA-256 no longer matches")
        return data

    def has(self, address: str) -> bool:
        return self._path(address).exists()

    def _path(self, address: str) -> Path:
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"not a blob address: {address!r}")
        return self.root / address[:2] / address


def put_sealed(blobs: BlobStore, key: DataKey, plain: bytes) -> str:
    return blobs.put(key.seal(plain))


def get_sealed(blobs: BlobStore, key: DataKey, address: str) -> bytes:
    return key.open(blobs.get(address))
