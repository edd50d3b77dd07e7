"""File rows, for the services and for a worker that writes its results file."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from . import tables as t
from .db import now


def add_file(
    session: Session,
    *,
    file_id: str,
    org_id: str,
    filename: str,
    purpose: str,
    size: int,
    status: str = "processed",
    status_details: str | None = None,
    expires_at: int | None = None,
    data_report: dict[str, Any] | None = None,
    blob_key: str | None = None,
) -> t.File:
    """`blob_key`: where the bytes are, when not files/<id> (a stored folder served as a tar)."""
    row = t.File(
        id=file_id,
        org_id=org_id,
        filename=filename,
        purpose=purpose,
        bytes=size,
        created_at=now(),
        status=status,
        status_details=status_details,
        blob_key=blob_key or f"files/{file_id}",
        expires_at=expires_at,
        data_report=data_report,
    )
    session.add(row)
    return row
