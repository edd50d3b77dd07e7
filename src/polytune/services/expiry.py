"""Deletes what has expired: uploads (OpenAI's Uploads API) not completed within their hour,
and files past their `expires_after`. Nothing else would ever remove them, and their bytes
count against the organization's storage quota (services/quotas.py).

A sweep runs every `expiry_sweep_interval` seconds in each server. It is idempotent, so two
servers on one database may both run it: a blob already gone is skipped.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database, now

log = logging.getLogger(__name__)


def sweep_expired(db: Database, blobs: BlobStore) -> tuple[int, int]:
    """Mark pending uploads past their expiry `expired` and delete their parts (blobs and
    rows); delete files past their expiry as DELETE /files does (the row is marked deleted,
    the blob removed). Returns (uploads, files) it expired."""
    at = now()
    with db.session() as s:
        uploads = list(s.scalars(sa.select(t.Upload).where(t.Upload.status == "pending", t.Upload.expires_at <= at)))
        for upload in uploads:
            upload.status = "expired"
            s.execute(sa.delete(t.UploadPart).where(t.UploadPart.upload_id == upload.id))
        files = list(
            s.scalars(
                sa.select(t.File).where(
                    t.File.deleted_at.is_(None), t.File.expires_at.is_not(None), t.File.expires_at <= at
                )
            )
        )
        for file in files:
            file.deleted_at = at
    # The rows first: from here on nothing is served from these blobs.
    for upload in uploads:
        blobs.delete(f"uploads/{upload.id}")
    for file in files:
        blobs.delete(f"files/{file.id}")
    if uploads or files:
        log.info("expired %d uploads and %d files", len(uploads), len(files))
    return len(uploads), len(files)


class ExpirySweeper:
    """Runs sweep_expired every `interval` seconds in a thread of its own."""

    def __init__(self, db: Database, blobs: BlobStore, *, interval: float):
        self.db, self.blobs, self.interval = db, blobs, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="polytune-expiry", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sweep_expired(self.db, self.blobs)
            except Exception:  # the store failed us: the next sweep tries again
                log.exception("expiry sweep failed")
