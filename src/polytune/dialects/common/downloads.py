"""A stored file's bytes as an HTTP response, the same for every dialect that serves them."""

from __future__ import annotations

import re
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from polytune.services.files import FileService

# What may stand inside the quoted ASCII fallback: printable ASCII but the quote, backslash and
# ';' (a '"' there would end the value and start parameters of the caller's choosing; naive
# parsers split on ';' even inside quotes).
_UNSAFE_FALLBACK = re.compile(r'[^\x20-\x7e]|["\\;]')


def content_disposition(filename: str) -> str:
    """`attachment` naming `filename` exactly (RFC 6266): a quoted ASCII fallback for old
    clients, and `filename*` (RFC 8187, UTF-8, percent-encoded) whenever the name is not plain
    ASCII, so no character of the name can end the header or add a parameter to it."""
    fallback = _UNSAFE_FALLBACK.sub("_", filename) or "download"
    if fallback == filename:
        return f'attachment; filename="{filename}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def file_content_response(files: FileService, org_id: str, file_id: str) -> StreamingResponse:
    info, chunks = files.content(org_id, file_id)
    # The SDKs size their download from Content-Length (seekrai refuses a missing or zero one).
    return StreamingResponse(chunks, media_type="application/octet-stream",
                             headers={"Content-Length": str(info.bytes),
                                      "Content-Disposition": content_disposition(info.filename)})
