"""Checking a whole file in one streaming pass, in constant memory.

Every row is checked against its format; all rows must share the format of the first one
(trainers take one format per dataset), and that format must fit the job's method when the
method is known. Problems are collected for the whole file, the first 20 shown, all counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .formats import (
    FORMATS,
    MESSAGE_FORMATS,
    METHOD_FORMATS,
    SPECS,
    describe_row,
    detect_format,
    method_formats_text,
    unknown_row_problem,
)
from .jsonl import read_rows
from .messages import plain_messages_ok
from .preference import is_conversational, preference_shape
from .problems import DatasetError, ProblemLog


@dataclass(frozen=True)
class DatasetSummary:
    """What a valid file holds."""

    n_examples: int
    format: str
    # For preference files, which of the three shapes (openai, seekr, trl) the rows use.
    shape: str | None = None

    def describe(self) -> str:
        shape = f", {self.shape} shape" if self.shape else ""
        return f"{self.n_examples} examples in {self.format} format{shape}"


def validate_file(
    path: Path,
    *,
    method: str | None = None,
    param: str = "training_file",
    min_examples: int = 1,
    item_fields: tuple[str, ...] = (),
) -> DatasetSummary:
    """Check every row of `path`; raise DatasetError naming lines and fields, or return a summary.

    `method` None checks the file for any method (at upload); otherwise its format must be
    one the method trains on. `item_fields` are fields grader templates read from each row.
    """
    check = FileCheck(path, method=method, param=param, item_fields=item_fields)
    check.drain()
    return check.summary(min_examples)


class FileCheck:
    """validate_file as a pass another reader can ride on: rows() yields each accepted row
    (line number, object, format) as it is checked, so the token count reads the file in the
    same pass (tokens.py: check_and_measure); summary() then raises the file's problems, if any,
    or says what it holds."""

    def __init__(self, path: Path, *, method: str | None, param: str, item_fields: tuple[str, ...] = ()):
        self.path, self.method, self.param, self.item_fields = path, method, param, item_fields
        self.log = ProblemLog()
        self.n_examples = 0
        self.file_format: str | None = None
        self.shape: str | None = None
        self.fatal: DatasetError | None = None  # the first row's format does not fit the method
        # One pass: a reader that stopped early (its own error) and drain() go on with it.
        self._rows = self._check()

    def drain(self) -> None:
        """Check the rows not read yet."""
        for _ in self._rows:
            pass

    def rows(self) -> Iterator[tuple[int, dict[str, Any], str, bool]]:
        """(line number, object, format, whether the object is already its TRL row) of each
        accepted row: a plain chat row (role and content, maybe weight) needs no conversion."""
        return self._rows

    def _check(self) -> Iterator[tuple[int, dict[str, Any], str, bool]]:
        method, param, item_fields, log = self.method, self.param, self.item_fields, self.log
        allowed = METHOD_FORMATS[method] if method else FORMATS
        file_format: str | None = None
        first_line = 0
        check = None
        plain_chat = False
        conversational: bool | None = None  # preference files: messages or plain strings
        for line_no, obj, problem in read_rows(self.path):
            if obj is None:
                log.add(line_no, [problem])  # type: ignore[list-item]
                continue
            self.n_examples += 1
            # The common row of a chat file, accepted at parsing speed (chat_problems would too).
            if plain_chat and len(obj) == 1 and plain_messages_ok(obj.get("messages")):
                yield line_no, obj, "chat", True
                continue
            fmt = detect_format(obj, method)
            if file_format is None:
                if fmt == "unknown":
                    log.add(line_no, [unknown_row_problem(obj)])
                    continue
                if fmt not in allowed:
                    self.fatal = DatasetError(
                        f"Invalid {param}: line {line_no} is {describe_row(obj, fmt)}, but a {method} job "
                        f"needs {method_formats_text(method)} examples.",
                        param=param,  # type: ignore[arg-type]
                        problems=[f"line {line_no}: {describe_row(obj, fmt)}"],
                    )
                    raise self.fatal
                file_format, first_line, check = fmt, line_no, SPECS[fmt].check
                self.file_format = fmt
                plain_chat = fmt == "chat"
                conversational = is_conversational(obj) if fmt == "preference" else None
                self.shape = preference_shape(obj) if fmt == "preference" else None
            elif fmt != file_format and fmt in MESSAGE_FORMATS and file_format in MESSAGE_FORMATS:
                if method is None and file_format == "reinforcement":
                    # At upload the first row decided; a chat file whose first row lost its reply
                    # would otherwise blame every other row.
                    log.add(
                        line_no,
                        [
                            f"a chat example (it ends with an assistant reply), but line {first_line} is "
                            "a reinforcement prompt (it does not): a file holds one kind; in a chat "
                            f"file, line {first_line} lacks its assistant reply"
                        ],
                    )
                    continue
                fmt = file_format  # a messages row is whatever the file's messages rows are
            if fmt != file_format:
                what = unknown_row_problem(obj) if fmt == "unknown" else describe_row(obj, fmt)
                log.add(
                    line_no, [f"expected a {file_format.replace('_', '/')} example like line {first_line}, got {what}"]
                )
                continue
            problems = check(obj, item_fields)  # type: ignore[misc]
            if fmt == "preference" and conversational is not None and is_conversational(obj) != conversational:
                kinds = ("standard (strings)", "conversational (messages)")
                problems.append(
                    f"expected a {kinds[conversational]} preference example like line {first_line}, "
                    f"got a {kinds[not conversational]} one"
                )
            if problems:
                log.add(line_no, problems)
                continue
            yield line_no, obj, fmt, False

    def summary(self, min_examples: int = 1) -> DatasetSummary:
        """What the file holds, once every row is checked; raises its problems instead."""
        param = self.param
        if self.fatal is not None:
            raise self.fatal
        if self.log.total:
            raise self.log.error(param)
        if self.file_format is None:
            raise DatasetError(
                f"Invalid {param}: the file holds no examples (it is empty or has only blank lines).", param=param
            )
        if self.n_examples < min_examples:
            raise DatasetError(
                f"Invalid {param}: the file has {self.n_examples} example{'s' if self.n_examples != 1 else ''}; "
                f"at least {min_examples} are needed.",
                param=param,
            )
        return DatasetSummary(n_examples=self.n_examples, format=self.file_format, shape=self.shape)


def validate_supervised_file(path: Path, param: str = "training_file") -> DatasetSummary:
    return validate_file(path, method="supervised", param=param)
