"""Secrets at rest (W&B API keys): encrypted with the server's secret, never stored in clear.

The secret is `POLYTUNE_SECRET_KEY` (a Fernet key: 32 url-safe base64-encoded bytes), or, when
that is unset, a key generated once into `<data dir>/secret.key` with 0600 permissions. Every
process that must read a secret back (the server, the CLI's admin commands, a worker) builds
the same box from the same settings; on several machines, set POLYTUNE_SECRET_KEY everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_FILE = "secret.key"


class SecretBox:
    def __init__(self, key: bytes | str):
        self._fernet = Fernet(key)

    @classmethod
    def from_settings(cls, settings) -> SecretBox:
        if settings.secret_key:
            return cls(settings.secret_key.get_secret_value())
        return cls(_key_file(settings.resolved_data_dir / KEY_FILE))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> str | None:
        """The value, or None when it was sealed with another secret (or is not a token)."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            return None


def _key_file(path: Path) -> bytes:
    """Read the key, or create it: O_EXCL so two processes starting together agree on one."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key
