"""Blob storage through fsspec: a local folder by default, any fsspec URL (s3://, gs://, ...) at scale.

Keys are relative paths ("files/file-abc", "models/ft:.../"). Writes land under a temporary
name and are moved into place when complete, so a reader never sees half a blob.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec

from polytune.domain.ids import new_id

CHUNK = 1024 * 1024


class BlobStore:
    def __init__(self, url: str):
        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url)
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{key.lstrip('/')}"

    def begin(self, key: str) -> PendingBlob:
        """A blob being written piece by piece (an upload stream); commit() makes it visible."""
        return PendingBlob(self, key)

    @contextlib.contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        """Open `key` for writing; it appears under its name only if the block succeeds."""
        pending = self.begin(key)
        try:
            yield pending.file
        except BaseException:
            pending.abort()
            raise
        pending.commit()

    def open(self, key: str) -> BinaryIO:
        return self.fs.open(self._path(key), "rb")

    def iter_chunks(self, key: str, chunk: int = CHUNK) -> Iterator[bytes]:
        with self.open(key) as f:
            while data := f.read(chunk):
                yield data

    def size(self, key: str) -> int:
        return int(self.fs.size(self._path(key)))

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._path(key)))

    def version(self, key: str) -> str | None:
        """What tells one write of `key` from another, from one metadata request (object storage:
        a HEAD; its ETag): a reader's cache of it is good while this stays the same. None when
        the key does not exist. Writes move a new file into place, so each is a new version."""
        try:
            info = self.fs.info(self._path(key))
        except FileNotFoundError:
            return None
        fields = ("size", "mtime", "ino", "created", "ETag", "LastModified", "generation", "md5Hash")
        return "|".join(f"{k}={info[k]}" for k in fields if info.get(k) is not None)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if self.fs.exists(path):
            self.fs.rm(path, recursive=True)

    def put_dir(self, local: Path, key: str) -> None:
        """Copy a local folder (a saved model) to `key/`."""
        for p in sorted(local.rglob("*")):
            if p.is_file():
                with p.open("rb") as src, self.writer(f"{key}/{p.relative_to(local).as_posix()}") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)

    def get_dir(self, key: str, local: Path) -> Path:
        """Copy `key/` to a local folder and return it."""
        base = self._path(key).rstrip("/")
        for path in self.fs.find(base):
            rel = path[len(base) :].lstrip("/")
            target = local / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with self.fs.open(path, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
        return local

    def local_path(self, key: str) -> Path | None:
        """Where `key` lies on this machine's file system when the store is a local (or shared,
        mounted) folder, so it is read in place; None for object storage (s3://, gs://, ...)."""
        if not _is_local(self.fs):
            return None
        path = Path(self._path(key))
        return path if path.exists() else None

    def get_file(self, key: str, local: Path) -> Path:
        local.parent.mkdir(parents=True, exist_ok=True)
        with self.open(key) as src, local.open("wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        return local


class PendingBlob:
    def __init__(self, store: BlobStore, key: str):
        self.store, self.key = store, key
        self.final = store._path(key)
        self.tmp = f"{self.final}.partial-{new_id('w', 8)}"
        store.fs.makedirs(store.fs._parent(self.final), exist_ok=True)
        self.file: BinaryIO = store.fs.open(self.tmp, "wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def commit(self) -> None:
        self.file.close()
        self.store.fs.mv(self.tmp, self.final)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.file.close()
        with contextlib.suppress(Exception):
            self.store.fs.rm(self.tmp)


@contextlib.contextmanager
def local_copy(store: BlobStore, key: str) -> Iterator[Path]:
    """A local path with the blob's bytes: the blob itself on a local filesystem, else a temp copy."""
    if _is_local(store.fs):
        yield Path(store._path(key))
        return
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        yield store.get_file(key, Path(d) / Path(key).name)


def _is_local(fs) -> bool:
    protocol = getattr(fs, "protocol", None)
    return protocol in ("file", ("file", "local")) or "file" in (protocol or ())
