"""Reading a JSON Lines file one line at a time, in constant memory, whatever it holds.

Every line becomes either an object or a problem a person can act on: bad JSON says where
on the line, bad UTF-8 says which byte, a line longer than MAX_LINE_BYTES is skipped without
being held in memory, and a JSON array or a pretty-printed object (the two usual ways a
JSON file is mistaken for JSONL) is named as such. Blank lines, CRLF line ends and a UTF-8
byte order mark are accepted: editors produce them and they lose nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from .problems import DatasetError, json_type

# One example is one line; no sensible example comes near this, and it keeps a file that is
# one enormous line (a JSON dump) from being read into memory whole.
MAX_LINE_BYTES = 8 * 1024 * 1024
_READ_BUFFER = 1024 * 1024
_BOM = b"\xef\xbb\xbf"

Row = tuple[int, "dict[str, Any] | None", "str | None"]


def read_rows(path: Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Row]:
    """(line number, object, None) for each good non-blank line, (line number, None, problem)
    for each bad one. A JSON array file yields one problem and stops."""
    loads = orjson.loads
    with open(path, "rb", buffering=_READ_BUFFER) as f:
        readline = f.readline
        line_no = 0
        first = True
        while True:
            raw = readline(max_line_bytes + 1)
            if not raw:
                return
            line_no += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                size = len(raw) + _skip_rest_of_line(f)
                yield (
                    line_no,
                    None,
                    (f"the line is {size:,} bytes long; one example may be at most {max_line_bytes:,} bytes"),
                )
                first = False
                continue
            if first:
                raw = raw.removeprefix(_BOM)
            try:
                obj = loads(raw)
            except orjson.JSONDecodeError as e:
                if raw.isspace() or not raw:
                    continue  # blank lines (also "\r\n") separate nothing and harm nothing
                problem = _parse_problem(raw, e)
                if first and raw.lstrip().startswith(b"["):
                    yield line_no, None, _ARRAY_FILE
                    return
                first = False
                yield line_no, None, problem
                continue
            if first and type(obj) is list:
                yield line_no, None, _ARRAY_FILE
                return
            first = False
            if type(obj) is not dict:
                yield line_no, None, f"expected a JSON object, got {json_type(obj)}"
                continue
            yield line_no, obj, None


_ARRAY_FILE = (
    "the file is a JSON array, not JSON Lines: write one example per line, each a JSON "
    "object, with no [ ] around them and no commas between lines"
)


def _skip_rest_of_line(f) -> int:
    skipped = 0
    while True:
        chunk = f.readline(_READ_BUFFER)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return skipped


def _parse_problem(raw: bytes, e: orjson.JSONDecodeError) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as u:
        return f"not valid UTF-8 (byte 0x{raw[u.start]:02x} at byte {u.start + 1} of the line)"
    stripped = text.strip()
    if stripped in ("{", "["):
        return (
            "not valid JSON: the line holds only '" + stripped + "'; a JSON object spread over "
            "several lines is not JSON Lines, where each example is one line"
        )
    # orjson counts columns in characters from 1, like an editor does.
    return f"not valid JSON ({e.msg} at column {e.colno})"


def iter_jsonl(path: Path, param: str = "training_file") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; raises DatasetError at the first bad line."""
    for line_no, obj, problem in read_rows(path):
        if problem is not None:
            raise DatasetError(
                f"Invalid {param}: line {line_no}: {problem}", param=param, problems=[f"line {line_no}: {problem}"]
            )
        yield line_no, obj  # type: ignore[misc]
