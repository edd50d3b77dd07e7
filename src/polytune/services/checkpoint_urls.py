"""Signed download URLs for the files of a Tinker run's external-weights checkpoint (the SDK's
get_external_weights_urls; `tinker checkpoint download` fetches them with a plain GET, no key).

A URL names one file of one checkpoint and carries its expiry and an HMAC over both, signed with a
key the server draws at start: like the runs themselves, URLs do not outlive the server."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path

from polytune.domain.errors import NotFound

URL_SECONDS = 3600


class CheckpointUrls:
    def __init__(self, root: Path):
        self.root, self._key = root, secrets.token_bytes(32)

    def _sign(self, rel: str, expires: int) -> str:
        return hmac.new(self._key, f"{rel}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, folder: Path, base_url: str) -> tuple[dict[str, str], int]:
        """{file path in the checkpoint: its URL}, and when they expire (unix seconds)."""
        expires = int(time.time()) + URL_SECONDS
        urls = {}
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                rel = f.relative_to(self.root).as_posix()
                query = f"expires={expires}&signature={self._sign(rel, expires)}"
                urls[f.relative_to(folder).as_posix()] = f"{base_url}/api/v1/checkpoint_files/{rel}?{query}"
        return urls, expires

    def open(self, rel: str, expires: int, signature: str) -> Path:
        """The file a signed URL names; a 404 for a wrong, expired or forged one."""
        missing = NotFound("No such checkpoint file, or its URL has expired.", param="url")
        # Bytes, not str: compare_digest refuses a str with non-ASCII characters (a forged URL's).
        given = signature.encode("utf-8", "surrogatepass")
        if not hmac.compare_digest(self._sign(rel, expires).encode(), given) or expires <= time.time():
            raise missing
        try:  # only a URL this server signed gets here
            path = (self.root / rel).resolve()
            found = path.is_relative_to(self.root.resolve()) and path.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            raise missing
        return path
