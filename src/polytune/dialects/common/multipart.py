"""multipart/form-data read as a stream: file parts go chunk by chunk to a sink (a pending
blob), never whole into memory or a temporary file; small text fields are collected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from fastapi import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from polytune.dialects.body_limit import allow_upload
from polytune.domain.errors import InvalidRequest

MAX_FIELD_BYTES = 64 * 1024
# Room for the multipart framing and text fields around the files' own bytes.
FORM_OVERHEAD = 1024 * 1024


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    sink: Any = None
    text: bytearray = field(default_factory=bytearray)


@dataclass
class Form:
    fields: dict[str, str]
    files: dict[str, tuple[str, Any]]  # field name -> (filename, sink)


async def read_multipart(request: Request, open_sink: Callable[[str, str], Sink]) -> Form:
    """Parse the body; `open_sink(field_name, filename)` is called for each file part and its
    bytes are written to the returned sink (in a worker thread, so the loop never blocks)."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidRequest("Expected a multipart/form-data body.", code="invalid_content_type")
    # Files stream to storage (each sink enforces its own limit), so this request may send more
    # than a JSON body may; the whole body is still bounded.
    allow_upload(request, request.app.state.services.settings.max_upload_bytes + FORM_OVERHEAD)

    actions: list[tuple[str, _Part, bytes]] = []
    current = _Part()
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        nonlocal current
        current = _Part()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        current.headers[header_field.decode("latin-1").lower()] = header_value.decode("utf-8", "replace")
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(current.headers.get("content-disposition", ""))
        current.name = disp.get(b"name", b"").decode("utf-8", "replace")
        fn = disp.get(b"filename")
        current.filename = fn.decode("utf-8", "replace") if fn is not None else None
        actions.append(("begin", current, b""))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        actions.append(("data", current, bytes(data[start:end])))

    def on_part_end() -> None:
        actions.append(("end", current, b""))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    form = Form({}, {})
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except Exception as e:
            raise InvalidRequest(f"Malformed multipart body: {e}", code="invalid_multipart") from None
        pending, actions[:] = list(actions), []
        buffered: list[bytes] = []  # file bytes of this chunk, written in one call per part
        for kind, part, data in pending:
            if kind == "begin" and part.filename is not None:
                part.sink = open_sink(part.name, part.filename)
                form.files[part.name] = (part.filename, part.sink)
            elif kind == "data" and part.sink is not None:
                buffered.append(data)
            elif kind == "data":
                part.text.extend(data)
                if len(part.text) > MAX_FIELD_BYTES:
                    raise InvalidRequest(f"Form field '{part.name}' is too long.", param=part.name)
            elif kind == "end" and part.sink is not None:
                await _flush(part.sink, buffered)
                buffered = []
            elif kind == "end":
                form.fields[part.name] = part.text.decode("utf-8", "replace")
        if buffered:  # the chunk ended inside a file part
            await _flush(current.sink, buffered)
    return form


async def _flush(sink: Sink, chunks: list[bytes]) -> None:
    if chunks:
        await anyio.to_thread.run_sync(sink.write, b"".join(chunks))
