"""The stored catalog is read once and again only when it changes (catalog/stored.StoredCatalog):
by this process's own `models add`, or another's (another server, the CLI, another node)."""

from __future__ import annotations

import time

import pytest

from polytune.catalog.models import Catalog
from polytune.catalog.stored import CATALOG_KEY
from polytune.domain.ids import new_id
from polytune.store.blobs import BlobStore


class _CountingStore(BlobStore):
    """The store, counting the catalog's reads and version checks (requests on object storage)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.reads = self.checks = 0

    def open(self, key):
        self.reads += key == CATALOG_KEY
        return super().open(key)

    def version(self, key):
        self.checks += key == CATALOG_KEY
        return super().version(key)


# A local folder, and fsspec's in-memory file system standing for object storage (no mtime or
# inode there: its own creation time tells one write from another).
@pytest.fixture(params=["folder", "memory"])
def store_url(request, tmp_path):
    return str(tmp_path / "store") if request.param == "folder" else f"memory://catalog-{new_id('t', 8)}"


def _names(catalog: Catalog) -> set[str]:
    return {e.name for e in catalog.list()}


def test_look_ups_read_the_catalog_once_until_it_changes(tmp_path, tiny, store_url):
    blobs = _CountingStore(store_url)
    server = Catalog(tmp_path / "server", blobs)
    server.add("one", tiny[1])
    reads = blobs.reads
    for _ in range(5):
        assert server.get("one").name == "one"
    # Five look-ups, one read: the first after its own write; then the version is unchanged.
    assert blobs.reads == reads + 1

    # Another process (the CLI's `models add`, another server) changes it in the store ...
    Catalog(tmp_path / "cli", BlobStore(store_url)).add("two", tiny[1], max_length=128)
    # ... and this server's next look-up sees it, reading it once more.
    assert server.get("two").max_length == 128 and blobs.reads == reads + 2
    assert _names(server) >= {"one", "two"} and blobs.reads == reads + 2


def test_own_changes_are_seen_at_once_even_between_checks(tmp_path, tiny, store_url):
    blobs = _CountingStore(store_url)
    server = Catalog(tmp_path / "server", blobs, check_seconds=2.0)
    server.add("one", tiny[1])
    checks = blobs.checks
    server.get("one")
    server.get("one")
    assert blobs.checks == checks + 1  # the second within check_seconds: not even a version check
    server.add("one", tiny[1], max_length=64)  # re-added by this process: dropped from the cache
    assert server.get("one").max_length == 64

    # Another process's change waits for the next check, at most check_seconds later.
    Catalog(tmp_path / "cli", BlobStore(store_url)).add("two", tiny[1])
    assert "two" not in _names(server)
    time.sleep(2.05)
    assert "two" in _names(server)


def test_a_store_without_a_catalog_is_checked_not_read(tmp_path):
    blobs = _CountingStore(str(tmp_path / "store"))
    catalog = Catalog(tmp_path / "data", blobs)
    assert {"polytune-tiny"} <= _names(catalog)
    _names(catalog)
    assert blobs.reads == 0 and blobs.checks == 2
