"""Encryption at rest for personal data (names, reference crops): Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from LIKENESS_SECRET_KEY, or a key file created once in the data directory with mode 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from likeness.errors import LikenessError
from likeness.settings import Settings


class Box:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def seal(self, plain: bytes) -> bytes:
        return self._fernet.encrypt(plain)

    def open(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise LikenessError(
                "cannot decrypt: the secret key does not match the one the data was sealed with"
            ) from exc

    def seal_text(self, plain: str) -> bytes:
        return self.seal(plain.encode())

    def open_text(self, token: bytes) -> str:
        return self.open(token).decode()


def load_box(settings: Settings) -> Box:
    if settings.secret_key:
        return Box(settings.secret_key.encode())
    return Box(_key_file(settings.home / "secret.key"))


def _key_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes().strip()
    key = Fernet.generate_key()
    # O_EXCL: two processes racing to create the key must not end up with different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
