"""SeekrFlow's file list pages by offset with its own sort vocabulary (`sort_by` created_at,
filename or size; `sort_order` asc or desc): this maps it onto the files service's window."""

from __future__ import annotations

from polytune.domain.errors import InvalidRequest
from polytune.domain.objects import Page
from polytune.services.files import FileService, FileSort

SORT_BY: dict[str, FileSort] = {"created_at": "created", "filename": "name", "size": "size"}


def file_window(
    files: FileService, org_id: str, *, offset: int, limit: int, sort_by: str, sort_order: str, purpose: str | None
) -> Page:
    if sort_by not in SORT_BY:
        raise InvalidRequest(f"sort_by must be one of {list(SORT_BY)}, got '{sort_by}'.", param="sort_by")
    if sort_order not in ("asc", "desc"):
        raise InvalidRequest("sort_order must be 'asc' or 'desc'.", param="sort_order")
    return files.list_window(
        org_id, sort=SORT_BY[sort_by], descending=sort_order == "desc", offset=offset, limit=limit, purpose=purpose
    )
