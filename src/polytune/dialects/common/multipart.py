"""multipart/form-data read as a stream: file parts go chunk by chunk to a sink (a pending
blob), never whole into memory or a temporary file; small text fields are collected."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

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
    headers: dict[str, bytes] = field(default_factory=dict)
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
        # Kept as bytes: a part's names are UTF-8 (RFC 7578 §4.2), decoded once they are split out.
        current.headers[header_field.decode("latin-1").lower()] = bytes(header_value)
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        raw = current.headers.get("content-disposition", b"")
        _, disp = parse_options_header(raw)
        current.name = _text(disp.get(b"name", b""))
        fn = extended_filename(raw)
        if fn is None and disp.get(b"filename") is not None:
            fn = _text(disp[b"filename"])
        current.filename = fn
        actions.append(("begin", current, b""))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        actions.append(("data", current, bytes(data[start:end])))

    def on_part_end() -> None:
        actions.append(("end", current, b""))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
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


def _text(raw: bytes) -> str:
    """A header parameter's bytes as text: UTF-8 as RFC 7578 says browsers and SDKs send it;
    bytes that are not UTF-8 are read as Latin-1, which older clients send."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_EXTENDED = re.compile(rb"""(?:^|;)\s*filename\*\s*=\s*([^;]+)""", re.IGNORECASE)


def extended_filename(header: bytes) -> str | None:
    """`filename*=UTF-8''caf%C3%A9.jsonl` (RFC 5987/8187), which some clients send for names
    that are not ASCII; it wins over a plain `filename` given beside it (RFC 6266 §4.3)."""
    match = _EXTENDED.search(header)
    if match is None:
        return None
    charset, _, rest = match.group(1).strip().strip(b'"').decode("latin-1").partition("'")
    _, _, encoded = rest.partition("'")
    try:
        return unquote(encoded, encoding=charset or "utf-8", errors="strict")
    except (LookupError, UnicodeDecodeError):
        raise InvalidRequest(
            "The part's filename* is not valid RFC 8187 text.", param="file", code="invalid_multipart"
        ) from None


async def _flush(sink: Sink, chunks: list[bytes]) -> None:
    if chunks:
        await anyio.to_thread.run_sync(sink.write, b"".join(chunks))
