"""What an uploaded fine-tune file holds, checked once at upload (before any job needs it).

Every row is checked in full for whatever format the file is in; which method it fits is
checked again when a job is created, with that job's method.
"""

from __future__ import annotations

from pathlib import Path

from .problems import DatasetError
from .validate import DatasetSummary, validate_file

__all__ = ["DatasetError", "inspect_file"]


def inspect_file(path: Path, param: str = "file") -> DatasetSummary:
    return validate_file(path, method=None, param=param)
