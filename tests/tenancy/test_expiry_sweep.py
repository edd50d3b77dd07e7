"""Expired uploads and files past their `expires_after` are deleted by the server's periodic
sweep (every 0.5 s on the tenancy server): gone from the API, their bytes gone from disk."""

from __future__ import annotations

import io
import time
from pathlib import Path

import openai
import pytest
import sqlalchemy as sa

from tests.helpers import wait_for
from tests.tenancy.conftest import openai_client


def _expire_now(server, table: str, row_id: str) -> None:
    """Move the row's expiry into the past: the real ones are an hour and more away."""
    engine = sa.create_engine(server.env["POLYTUNE_DATABASE_URL"])
    try:
        with engine.begin() as c:
            c.execute(
                sa.text(f"UPDATE {table} SET expires_at = :t WHERE id = :i"), {"t": int(time.time()) - 1, "i": row_id}
            )
    finally:
        engine.dispose()


def _upload_row(server, upload_id: str) -> tuple[str, int]:
    engine = sa.create_engine(server.env["POLYTUNE_DATABASE_URL"])
    try:
        with engine.connect() as c:
            status = c.execute(sa.text("SELECT status FROM uploads WHERE id = :i"), {"i": upload_id}).scalar()
            parts = c.execute(
                sa.text("SELECT count(*) FROM upload_parts WHERE upload_id = :i"), {"i": upload_id}
            ).scalar()
    finally:
        engine.dispose()
    return status, parts


def test_expired_files_and_uploads_are_swept(tenancy_server):
    client = openai_client(tenancy_server, "org-expiry")
    blobs = Path(tenancy_server.env["POLYTUNE_DATA_DIR"]) / "blobs"
    expiring = client.files.create(
        file=("old.txt", io.BytesIO(b"old\n")),
        purpose="user_data",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )
    kept = client.files.create(file=("kept.txt", io.BytesIO(b"kept\n")), purpose="user_data")
    upload = client.uploads.create(bytes=8, filename="late.txt", purpose="user_data", mime_type="text/plain")
    client.uploads.parts.create(upload.id, data=b"half")
    assert (blobs / "files" / expiring.id).is_file() and any((blobs / "uploads" / upload.id).iterdir())

    _expire_now(tenancy_server, "files", expiring.id)
    _expire_now(tenancy_server, "uploads", upload.id)
    wait_for(
        lambda: not (blobs / "files" / expiring.id).exists() and not (blobs / "uploads" / upload.id).exists(),
        timeout=30,
        interval=0.1,
    )

    assert [f.id for f in client.files.list().data] == [kept.id]
    with pytest.raises(openai.NotFoundError):
        client.files.content(expiring.id)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(expiring.id)
    assert _upload_row(tenancy_server, upload.id) == ("expired", 0)
    with pytest.raises(openai.BadRequestError, match="expired"):
        client.uploads.complete(upload.id, part_ids=[])
    assert client.files.content(kept.id).read() == b"kept\n" and (blobs / "files" / kept.id).is_file()
    client.files.delete(kept.id)
