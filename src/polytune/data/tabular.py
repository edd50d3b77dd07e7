"""Question/answer training examples from a table: a CSV, TSV, Parquet or JSONL file with a
question column and an answer column (how Oxen.ai's text fine-tunes take their data).

Tables are read through `datasets`, which knows each format's quirks (quoting, types,
Parquet row groups). Every row becomes one chat example, the question as the user's turn and
the answer as the assistant's, so it trains exactly like a chat JSONL file; a bad row is
named by its number (1-based, not counting a CSV header) and column.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .problems import DatasetError, rows_error

# File suffix -> (datasets builder, builder options).
TABULAR_FORMATS: dict[str, tuple[str, dict[str, Any]]] = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".parquet": ("parquet", {}),
    ".jsonl": ("json", {}),
    ".ndjson": ("json", {}),
    ".json": ("json", {}),
}


def question_answer_examples(
    path: Path, *, filename: str, question_column: str, answer_column: str, param: str = "resource"
) -> list[dict[str, Any]]:
    """Chat examples (`{"messages": [user, assistant]}`) from the table at `path`.

    `filename` is the table's own name (its suffix picks the format; `path` may be a blob
    with none). Raises DatasetError naming the file, the column or the rows at fault.
    """
    table = load_table(path, filename=filename, param=param)
    columns = list(table.column_names)
    for role, column in (("question_column", question_column), ("answer_column", answer_column)):
        if column not in columns:
            image_columns = looks_like_images(table)
            hint = (
                f" It looks like an image table ({image_columns[0]!r} holds image files): use script_type "
                "'image_generation' with image_column and caption_column."
                if image_columns
                else ""
            )
            raise DatasetError(
                f"{filename} has no column '{column}' ({role}); its columns are "
                f"{', '.join(repr(c) for c in columns) or 'none'}.{hint}",
                param=f"training_params.{role}",
            )
    examples: list[dict[str, Any]] = []
    problems: list[str] = []
    for row_no, (question, answer) in enumerate(zip(table[question_column], table[answer_column]), 1):
        row_problems = [
            f"row {row_no}: '{column}' is empty"
            for column, value in ((question_column, question), (answer_column, answer))
            if _blank(value)
        ]
        if row_problems:
            problems.extend(row_problems)
            continue
        examples.append(
            {
                "messages": [
                    {"role": "user", "content": _text(question)},
                    {"role": "assistant", "content": _text(answer)},
                ]
            }
        )
    if problems:
        raise rows_error(filename, problems, param)
    if not examples:
        raise DatasetError(f"{filename} has no rows.", param=param)
    return examples


def load_table(path: Path, *, filename: str, param: str = "resource"):
    """The whole table at `path` as a `datasets.Dataset` (its format from `filename`'s suffix)."""
    suffix = Path(filename).suffix.lower()
    if suffix not in TABULAR_FORMATS:
        raise DatasetError(
            f"{filename}: can't read a '{suffix or 'suffixless'}' file as a table; "
            f"expected one of {', '.join(TABULAR_FORMATS)}.",
            param=param,
        )
    builder, options = TABULAR_FORMATS[suffix]
    from datasets import load_dataset

    try:
        # A throwaway cache: the table is read once, here, and kept in memory.
        with tempfile.TemporaryDirectory(prefix="polytune-table-") as cache:
            table = load_dataset(
                builder, data_files=str(path), split="train", keep_in_memory=True, cache_dir=cache, **options
            )
    except Exception as e:  # noqa: BLE001 - any reader failure is a file the user must fix
        if "corresponds to no data" in str(e):  # datasets' words for a table with a header only
            raise DatasetError(f"{filename} has no rows.", param=param) from None
        raise DatasetError(
            f"{filename}: not a readable {builder} file ({type(e).__name__}: {_first_line(e)}).", param=param
        ) from None
    return table


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    # CSV readers type a column of numbers as numbers; an answer "42" is still text to train on.
    return value if isinstance(value, str) else str(value)


def looks_like_images(table) -> list[str]:
    """The columns whose first value names an image file (or holds image bytes)."""
    from .images import IMAGE_SUFFIXES

    if len(table) == 0:
        return []
    first = table[0]
    return [
        c
        for c, v in first.items()
        if (isinstance(v, str) and v.lower().endswith(IMAGE_SUFFIXES)) or isinstance(v, (bytes, dict))
    ]


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else "no detail"
