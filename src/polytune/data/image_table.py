"""Image/caption examples from a table in a repository: a CSV, TSV, Parquet or JSONL file with
a column of image paths (or, in Parquet, image bytes) and a column of captions — how Oxen.ai's
image fine-tunes take their data.

A path is looked up in the repository (from its root, then from the table's folder); each
image must decode. A bad row is named by its number (1-based, not counting a CSV header) and
column: a missing file, a file that is not an image, an empty caption.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from .images import image_problem, to_data_url
from .problems import DatasetError, rows_error
from .tabular import _blank, _text, load_table

# A repository path -> its bytes; raises FileNotFoundError when there is no such file.
ReadFile = Callable[[str], bytes]


def image_caption_examples(
    path: Path, *, filename: str, image_column: str, caption_column: str, read_file: ReadFile, param: str = "resource"
) -> list[dict[str, Any]]:
    """`{"image": <data URL>, "caption": ...}` per row; raises DatasetError (after reading
    every row, so all problems are listed at once) naming the rows and columns at fault."""
    table = load_table(path, filename=filename, param=param)
    columns = list(table.column_names)
    for role, column in (("image_column", image_column), ("caption_column", caption_column)):
        if column not in columns:
            text_like = {"question", "answer", "prompt", "completion", "messages"} & set(columns)
            hint = (
                " It looks like a text table: use script_type 'text_generation' with question_column and answer_column."
                if text_like
                else ""
            )
            raise DatasetError(
                f"{filename} has no column '{column}' ({role}); its columns are "
                f"{', '.join(repr(c) for c in columns) or 'none'}.{hint}",
                param=f"training_params.{role}",
            )
    folder = str(PurePosixPath(filename).parent)
    problems: list[str] = []
    examples: list[dict[str, Any]] = []
    for row_no, (cell, caption) in enumerate(zip(table[image_column], table[caption_column]), 1):
        row_problems = []
        if _blank(caption):
            row_problems.append(f"row {row_no}, column '{caption_column}': the caption is empty")
        data, problem = _image_bytes(cell, folder, read_file)
        if problem is None:
            problem = image_problem(data)
            if problem is not None:
                problem = f"{_name(cell)} {problem}"
        if problem is not None:
            row_problems.append(f"row {row_no}, column '{image_column}': {problem}")
        if row_problems:
            problems.extend(row_problems)
            continue
        examples.append({"image": to_data_url(data), "caption": _text(caption).strip()})
    if problems:
        raise rows_error(filename, problems, param)
    if not examples:
        raise DatasetError(f"{filename} has no rows.", param=param)
    return examples


def _name(cell: Any) -> str:
    return repr(cell) if isinstance(cell, str) else "the image"


def _image_bytes(cell: Any, folder: str, read_file: ReadFile) -> tuple[bytes, str | None]:
    """The image's bytes, or why there are none."""
    if isinstance(cell, dict):  # a Parquet image struct ({"bytes", "path"}), as datasets writes them
        if cell.get("bytes"):
            return bytes(cell["bytes"]), None
        cell = cell.get("path")
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell), None
    if _blank(cell) or not isinstance(cell, str):
        return b"", "no image path"
    path = cell.strip().lstrip("/")
    candidates = [path]
    if folder not in ("", "."):
        candidates.append(posixpath.normpath(f"{folder}/{path}"))
    for candidate in candidates:
        try:
            return read_file(candidate), None
        except FileNotFoundError:
            continue
    return b"", f"{cell!r} is not a file in the repository"
