"""Added base models and the catalog itself kept in blob storage, so every node reads them.

A worker on another node has no copy of the server's data dir: `models add` copies the model's
folder (config, tokenizer, weights) into blob storage, and a worker reads it from there. A store
on a local or shared file system is read in place (no copy); from object storage (s3://, ...) the
node's first process downloads it once into the node's cache, the others wait on a file lock and
reuse it, as training/resume_fetch.py does for resume checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from filelock import FileLock

from polytune.domain.ids import new_id
from polytune.store import node_cache
from polytune.store.blobs import BlobStore

# One JSON list of the added entries (CatalogEntry fields), beside the blobs it names.
CATALOG_KEY = "catalog/models.json"


def upload_model(blobs: BlobStore, name: str, folder: Path) -> str:
    """Copy a model folder into storage and return its key. Each add gets its own key, so a node's
    cached copy of an earlier model added under the same name is never taken for this one."""
    key = f"base-models/{name}/{new_id('v', 12)}"
    blobs.put_dir(folder, key)
    return key


class StoredCatalog:
    """The stored catalog as this process last read it: a look-up reads it again only when it
    changed (a `models add` by this process, or by another, on any node).

    Every catalog look-up (each job created, each request naming a model) used to read and parse
    the file from storage. Now a look-up asks for its version (BlobStore.version: a stat, or one
    HEAD on object storage) and reuses what it read while that is unchanged; this process's own
    writes drop what it holds at once. `check_seconds` > 0 (POLYTUNE_CATALOG_CHECK_SECONDS)
    skips even that request for so long after the last one, at the price of another node's
    `models add` showing up that much later."""

    def __init__(self, blobs: BlobStore, check_seconds: float = 0.0):
        self.blobs, self.check_seconds = blobs, check_seconds
        self._held: tuple[str | None, list[dict] | None] | None = None  # (version, entries)
        self._checked = 0.0

    def entries(self) -> list[dict] | None:
        """The stored list of added entries; None when the store holds none yet."""
        now = time.monotonic()
        if self._held is not None and self.check_seconds > 0 and now - self._checked < self.check_seconds:
            return self._held[1]
        version = self.blobs.version(CATALOG_KEY)
        self._checked = now
        if self._held is None or self._held[0] != version:
            # Read after the version was taken: a write in between is read now and seen as a
            # new version at the next look-up (read again then), never the other way round.
            self._held = (version, read_catalog(self.blobs) if version is not None else None)
        return self._held[1]

    def write(self, entries: list[dict]) -> None:
        write_catalog(self.blobs, entries)
        self._held = None


def read_catalog(blobs: BlobStore) -> list[dict] | None:
    """The stored list of added entries; None when the store holds none yet."""
    # One request, not an exists() first: every catalog look-up reads it (object storage: a GET).
    try:
        with blobs.open(CATALOG_KEY) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        return None


def write_catalog(blobs: BlobStore, entries: list[dict]) -> None:
    # BlobStore.writer moves the file into place when complete: a reader sees the old or the new list.
    with blobs.writer(CATALOG_KEY) as f:
        f.write(json.dumps(entries, indent=2).encode())


def model_folder(blobs: BlobStore, key: str, cache: Path, *, max_bytes: int = 0, keep: bool = False) -> Path | None:
    """The stored model `key` as a local folder: in place on a file-system store, else this node's
    cached copy, fetched on first use (then the node's cache is pruned to `max_bytes`, least
    recently used first: store/node_cache.py). `keep`: this process holds the copy in use until
    it ends (a training worker), so no prune removes it meanwhile. None when the store does not
    hold it."""
    in_place = blobs.local_path(key)
    if in_place is not None:
        return in_place
    folder = cache / key
    if not folder.is_dir() and not blobs.exists(key):
        return None
    fetched = False
    with node_cache.holding(folder):  # a prune elsewhere waits, or is waited for and then refetched
        if not folder.is_dir():
            folder.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(folder) + ".lock"):
                if not folder.is_dir():  # another process of this node fetched it while we waited
                    partial = folder.with_name(f".{folder.name}-{os.getpid()}")
                    shutil.rmtree(partial, ignore_errors=True)
                    blobs.get_dir(key, partial)
                    os.rename(partial, folder)  # whole or not at all
                    fetched = True
        node_cache.touch(folder)
        if keep:
            node_cache.hold(folder)
    if fetched:
        node_cache.prune(cache, max_bytes)
    return folder
