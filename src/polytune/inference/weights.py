"""Find a model's weights: a catalog base model's folder, or a fine-tuned model's blobs
copied to a local cache folder (once; later calls reuse it)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import sqlalchemy as sa

from polytune.config import Settings
from polytune.domain.errors import NotFound
from polytune.store import node_cache
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database
from polytune.catalog.models import Catalog

_COMPLETE = ".complete"


def cache_root(settings: Settings) -> Path:
    return settings.resolved_data_dir / "cache"


def fetch_model_dir(blobs: BlobStore, root: Path, blob_key: str, *, max_bytes: int = 0) -> Path:
    """The local copy of the folder stored under `blob_key`, copied on first use; after a copy,
    the node's cache is pruned to `max_bytes` (least recently used first, never one in use:
    store/node_cache.py; 0: no cap).

    The copy is made next to its final place and renamed into it, so two processes (or
    threads) fetching the same model at once never see, or leave, half a folder.
    """
    final = root / blob_key
    with node_cache.holding(final):  # a prune removing it meanwhile is waited for: then refetched
        if (final / _COMPLETE).exists():
            node_cache.touch(final)
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.parent / f".{final.name}.partial-{uuid.uuid4().hex}"
        try:
            blobs.get_dir(blob_key, staging)
            (staging / _COMPLETE).touch()
            if final.exists() and not (final / _COMPLETE).exists():
                shutil.rmtree(final, ignore_errors=True)  # a copy interrupted by an older version
            try:
                staging.rename(final)
            except OSError:
                if not (final / _COMPLETE).exists():
                    raise  # not a lost race with an identical copy
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        node_cache.touch(final)
    node_cache.prune(root, max_bytes)
    return final


def drop_model_dir(root: Path, blob_key: str) -> None:
    """Remove a local copy (the model was deleted)."""
    shutil.rmtree(root / blob_key, ignore_errors=True)
    node_cache.sidecar(root / blob_key).unlink(missing_ok=True)


def local_model_dir(settings: Settings, model_id: str, *, org_id: str | None = None) -> Path:
    catalog = Catalog.for_settings(settings, BlobStore(settings.resolved_storage_url))
    if model_id in {e.name for e in catalog.list()}:
        return Path(catalog.resolve_path(catalog.get(model_id)))
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as s:
            stmt = sa.select(t.Model).where(t.Model.id == model_id, t.Model.deleted_at.is_(None))
            if org_id is not None:
                stmt = stmt.where(t.Model.org_id == org_id)
            row = s.scalar(stmt)
    finally:
        db.dispose()
    if row is None:
        raise NotFound(f"The model '{model_id}' does not exist.", param="model", code="model_not_found")
    return fetch_model_dir(
        BlobStore(settings.resolved_storage_url),
        cache_root(settings),
        row.blob_key,
        max_bytes=settings.node_cache_bytes,
    )
