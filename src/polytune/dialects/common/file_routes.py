"""The file routes every dialect with a files API shares (OpenAI's and SeekrFlow's): retrieve,
content, delete. Each dialect adds them to its own router (so its prefix and its error route class
apply) and renders a file in its own shape."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from polytune.dialects.common.deps import OrgId, Svc
from polytune.dialects.common.downloads import file_content_response
from polytune.domain.objects import FileInfo


def add_file_routes(router: APIRouter, render: Callable[[FileInfo], dict[str, Any]]) -> None:
    @router.get("/files/{file_id}")
    def retrieve_file(file_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
        return render(svc.files.get(org, file_id))

    @router.get("/files/{file_id}/content")
    def file_content(file_id: str, request: Request, org: OrgId, svc: Svc) -> Response:
        return file_content_response(svc.files, org, file_id, request.headers.get("range"))

    @router.delete("/files/{file_id}")
    def delete_file(file_id: str, org: OrgId, svc: Svc) -> dict[str, Any]:
        svc.files.delete(org, file_id)
        return {"id": file_id, "object": "file", "deleted": True}
