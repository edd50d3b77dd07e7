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
from pathlib import Path

from filelock import FileLock

from polytune.domain.ids import new_id
from polytune.store.blobs import BlobStore

# One JSON list of the added entries (CatalogEntry fields), beside the blobs it names.
CATALOG_KEY = "catalog/models.json"


def upload_model(blobs: BlobStore, name: str, folder: Path) -> str:
    """Copy a model folder into storage and return its key. Each add gets its own key, so a node's
    cached copy of an earlier model added under the same name is never taken for this one."""
    key = f"base-models/{name}/{new_id('v', 12)}"
    blobs.put_dir(folder, key)
    return key


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


def model_folder(blobs: BlobStore, key: str, cache: Path) -> Path | None:
    """The stored model `key` as a local folder: in place on a file-system store, else this node's
    cached copy, fetched on first use. None when the store does not hold it."""
    in_place = blobs.local_path(key)
    if in_place is not None:
        return in_place
    folder = cache / key
    if folder.is_dir():
        return folder
    if not blobs.exists(key):
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):
        if not folder.is_dir():  # another process of this node fetched it while we waited
            partial = folder.with_name(f".{folder.name}-{os.getpid()}")
            shutil.rmtree(partial, ignore_errors=True)
            blobs.get_dir(key, partial)
            os.rename(partial, folder)  # whole or not at all
    return folder
