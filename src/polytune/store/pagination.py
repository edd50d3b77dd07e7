"""Cursor pagination on the integer `seq` column: `after` is the id of the last item seen."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.domain.errors import InvalidRequest


def page(
    session: Session,
    stmt: sa.Select,
    table: Any,
    *,
    after: str | None,
    limit: int,
    order: Literal["asc", "desc"] = "desc",
) -> tuple[list[Any], bool]:
    """Rows after the cursor, at most `limit`, and whether more follow."""
    if not 1 <= limit <= 10_000:
        raise InvalidRequest("limit must be between 1 and 10000.", param="limit")
    if after:
        # The cursor is looked up inside the list itself (the caller's organization, job, filters):
        # an id of another organization is as unknown as one that never existed, so the answer
        # can't tell whether it exists.
        cursor = session.scalar(stmt.with_only_columns(table.seq).where(table.id == after).limit(1))
        if cursor is None:
            raise InvalidRequest(f"No object with id '{after}' to page after.", param="after")
        stmt = stmt.where(table.seq < cursor if order == "desc" else table.seq > cursor)
    stmt = stmt.order_by(table.seq.desc() if order == "desc" else table.seq.asc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    return rows[:limit], len(rows) > limit
