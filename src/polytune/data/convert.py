"""Checked files into TRL's dataset formats, row by row.

`iter_trl_rows` streams (line number, TRL row) for a file that validate_file accepted;
`trl_dataset` turns rows into a `datasets.Dataset` without losing anything: nested values
(messages, tools, grader fields) are stored as JSON per row, so a tool call's arguments
keep exactly their own keys instead of being widened to the union of every row's keys
(what Arrow's struct columns would do, adding nulls a chat template would then render).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .formats import MESSAGE_FORMATS, SPECS, detect_format
from .jsonl import iter_jsonl
from .problems import DatasetError

if TYPE_CHECKING:
    from datasets import Dataset


def iter_trl_rows(
    path: Path, method: str | None = "supervised", param: str = "training_file"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, TRL row) for each example; the file's format is its first row's."""
    file_format = None
    for line_no, obj in iter_jsonl(path, param):
        fmt = detect_format(obj, method)
        if file_format is None:
            file_format = fmt
        elif fmt != file_format and fmt in MESSAGE_FORMATS and file_format in MESSAGE_FORMATS:
            fmt = file_format
        if fmt != file_format or fmt == "unknown":
            raise DatasetError(
                f"Invalid {param}: line {line_no}: not a {file_format} example (validate the file first)", param=param
            )
        yield line_no, SPECS[fmt].to_trl(obj)


def to_trl_rows(path: Path, param: str = "training_file", method: str | None = "supervised") -> list[dict[str, Any]]:
    """Every row of a checked file in TRL's format (trainers take the whole list anyway)."""
    return [row for _, row in iter_trl_rows(path, method, param)]


def trl_dataset(rows: list[dict[str, Any]]) -> Dataset:
    """A datasets.Dataset of TRL rows: string columns stay strings, lists of messages become
    lists of JSON objects, anything else one JSON value per row."""
    import orjson
    from datasets import Dataset, Features, Json, List, Value

    kinds: dict[str, str] = {}
    for row in rows:
        for key, value in row.items():
            kind = _kind(value)
            if kind is not None:
                kinds[key] = kind if kinds.get(key) in (None, kind) else "json"
    json_keys = [k for k, kind in kinds.items() if kind == "json"]
    if json_keys:
        # Encoded here, so a string that happens to be valid JSON ("42") stays a string.
        rows = [
            {**row, **{k: orjson.dumps(row[k]).decode() for k in json_keys if row.get(k) is not None}} for row in rows
        ]
    features = Features(
        {
            k: Value("string") if kind == "str" else List(Json()) if kind == "messages" else Json()
            for k, kind in kinds.items()
        }
    )
    return Dataset.from_list(rows, features=features)


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return "messages"
    return "json"
