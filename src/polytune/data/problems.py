"""How a dataset problem is told: the line, the field path inside the row, what was expected.

A file with a systematic mistake has it on every line; the first MAX_REPORTED_PROBLEMS are
listed and the rest only counted, so the report stays readable whatever the file's size.
"""

from __future__ import annotations

import json
from typing import Any

from polytune.domain.errors import InvalidRequest

MAX_REPORTED_PROBLEMS = 20


class DatasetError(InvalidRequest):
    """A training or validation file that cannot be used.

    `problems` holds the first MAX_REPORTED_PROBLEMS problems ("line 3: messages[2].role: ..."),
    `total` how many there were in all.
    """

    code = "invalid_file_format"

    def __init__(self, message: str, *, param: str, problems: list[str] | None = None, total: int | None = None):
        super().__init__(message, param=param)
        self.problems = problems or []
        self.total = total if total is not None else len(self.problems)


class ProblemLog:
    """Collects problems of a whole file: keeps the first few, counts them all."""

    def __init__(self, limit: int = MAX_REPORTED_PROBLEMS):
        self.limit = limit
        self.shown: list[str] = []
        self.total = 0

    def add(self, line_no: int, problems: list[str]) -> None:
        self.total += len(problems)
        room = self.limit - len(self.shown)
        if room > 0:
            self.shown.extend(f"line {line_no}: {p}" for p in problems[:room])

    def error(self, param: str) -> DatasetError:
        more = f"\n... and {self.total - len(self.shown)} more" if self.total > len(self.shown) else ""
        noun = "problem" if self.total == 1 else "problems"
        return DatasetError(
            f"Invalid {param}: {self.total} {noun} found:\n" + "\n".join(self.shown) + more,
            param=param,
            problems=list(self.shown),
            total=self.total,
        )


def rows_error(filename: str, problems: list[str], param: str) -> DatasetError:
    """Every bad row of a table as one error: the first MAX_REPORTED_PROBLEMS, and how many more."""
    shown = problems[:MAX_REPORTED_PROBLEMS]
    more = f"\n... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return DatasetError(
        f"{filename}: {len(problems)} problem{'s' if len(problems) > 1 else ''}:\n" + "\n".join(shown) + more,
        param=param,
        problems=shown,
    )


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as a person who wrote the file thinks of it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def show(value: Any) -> str:
    """A value for an error message, cut short: users paste whole documents into fields."""
    shown = json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def is_blank(text: str) -> bool:
    return not text or text.isspace()
