"""A stored file's bytes as an HTTP response, the same for every dialect that serves them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse

from polytune.services.files import FileService

CHUNK = 1 << 20

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


def file_content_response(files: FileService, org_id: str, file_id: str, range_header: str | None) -> Response:
    """A file's bytes: a file stored as one blob honours `Range` (206, 416), so `polytune files
    download` resumes; a stored folder (a checkpoint's tar, built as it streams) comes whole."""
    info, opener = files.opener(org_id, file_id)
    if opener is not None:
        # Files are never rewritten in place: the id and size name these bytes.
        etag = f'"{file_id}:{info.bytes}"'
        return ranged_response(opener, info.bytes, info.filename, "application/octet-stream", range_header, etag)
    _, chunks = files.content(org_id, file_id)
    # The SDKs size their download from Content-Length (seekrai refuses a missing or zero one).
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"Content-Length": str(info.bytes), "Content-Disposition": content_disposition(info.filename)},
    )


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes a `Range: bytes=…` header asks for (RFC 9110 14.1.2), None for the
    whole content (no header, several ranges, another unit: a server may ignore them), or
    ValueError when the one range asked for lies past the end (416)."""
    match = _RANGE.match((header or "").strip().replace(" ", ""))
    if match is None or not any(match.groups()):
        return None
    first, last = match.groups()
    if not first:  # bytes=-N: the last N bytes
        if int(last) == 0:
            raise ValueError("empty suffix range")
        return max(0, size - int(last)), size - 1
    if int(first) >= size or (last and int(last) < int(first)):
        raise ValueError("range not satisfiable")
    return int(first), min(int(last), size - 1) if last else size - 1


def ranged_response(
    open_blob: Callable[[], BinaryIO], size: int, filename: str, media_type: str, range_header: str | None, etag: str
) -> Response:
    """A stored blob streamed whole (200) or from a byte range (206), so an interrupted
    download resumes where it stopped (`curl -C -`, the CLI's `models download`)."""
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Content-Disposition": content_disposition(filename)}
    try:
        wanted = byte_range(range_header, size)
    except ValueError:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    first, last = wanted if wanted is not None else (0, size - 1)

    def chunks() -> Iterator[bytes]:
        with open_blob() as f:
            f.seek(first)
            left = last - first + 1
            while left > 0 and (data := f.read(min(CHUNK, left))):
                left -= len(data)
                yield data

    headers["Content-Length"] = str(max(0, last - first + 1))
    if wanted is None:
        return StreamingResponse(chunks(), media_type=media_type, headers=headers)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(chunks(), status_code=206, media_type=media_type, headers=headers)
