"""CSV, Parquet and JSON files (Oxen repositories hold these) read through the `datasets`
library, with a mapping from the file's columns to an example format's fields.

    read_tabular("qa.csv", columns={"prompt": "question", "completion": "answer"})

yields (row number, {"prompt": ..., "completion": ...}) one row at a time (datasets streams
the file, so memory stays flat). `tabular_to_jsonl` writes those rows as JSON Lines, which
then go through the same validation, conversion and token accounting as an uploaded file;
its line N is the file's Nth data row, so problems point at the right row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from .problems import DatasetError

# File suffix -> the `datasets` builder that reads it.
TABULAR_TYPES = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".json": "json", ".jsonl": "json"}


def read_tabular(
    path: Path | str, columns: Mapping[str, str] | None = None, *, file_type: str | None = None, param: str = "columns"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number from 1, example) for each row. `columns` maps example fields (prompt,
    completion, text, messages, chosen, rejected, ...) to the file's column names; None keeps
    the columns as they are named in the file."""
    from datasets import load_dataset

    path = Path(path)
    builder = file_type or TABULAR_TYPES.get(path.suffix.lower())
    if builder is None:
        raise DatasetError(
            f"Can't read {path.name}: expected a file ending in {', '.join(TABULAR_TYPES)} (or a file_type).",
            param="file",
        )
    kwargs: dict[str, Any] = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
    try:
        rows = load_dataset(builder, data_files=str(path), split="train", streaming=True, **kwargs)
        for n, row in enumerate(rows, start=1):
            if n == 1 and columns:
                _check_columns(columns, list(row), param)
            example = {field: row[source] for field, source in columns.items()} if columns else dict(row)
            if builder == "csv":
                # A CSV cell is text; the library guesses numbers ("4" -> 4), which a text field is not.
                example = {k: v if v is None or isinstance(v, str) else str(v) for k, v in example.items()}
            yield n, example
    except DatasetError:
        raise
    except Exception as e:  # the library's parse errors: a person needs the file and the reason
        raise DatasetError(f"Can't read {path.name} as {builder}: {type(e).__name__}: {e}", param="file") from e


def _check_columns(columns: Mapping[str, str], present: list[str], param: str) -> None:
    missing = [source for source in columns.values() if source not in present]
    if missing:
        raise DatasetError(
            f"Invalid {param}: column {missing[0]!r} is not in the file (its columns: {', '.join(present)}).",
            param=param,
        )


def tabular_to_jsonl(
    path: Path | str,
    out: Path | str,
    columns: Mapping[str, str] | None = None,
    *,
    file_type: str | None = None,
    param: str = "columns",
) -> int:
    """Write the mapped rows to `out` as JSON Lines; returns how many rows were written."""
    n = 0
    with open(out, "wb") as f:
        for n, example in read_tabular(path, columns, file_type=file_type, param=param):  # noqa: B007 - n is returned
            f.write(orjson.dumps(example, default=_jsonable) + b"\n")
    return n


def _jsonable(value: Any) -> Any:
    # Parquet gives numpy scalars and arrays, and dates; JSON takes their plain values.
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
