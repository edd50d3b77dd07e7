"""A stored file's bytes as an HTTP response, the same for every dialect that serves them."""

from __future__ import annotations

from fastapi.responses import StreamingResponse

from polytune.services.files import FileService


def file_content_response(files: FileService, org_id: str, file_id: str) -> StreamingResponse:
    info, chunks = files.content(org_id, file_id)
    # The SDKs size their download from Content-Length (seekrai refuses a missing or zero one).
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"Content-Length": str(info.bytes),
                                      "Content-Disposition": f'attachment; filename="{info.filename}"'})
