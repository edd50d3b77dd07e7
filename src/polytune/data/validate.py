"""Checking a whole file in one streaming pass, in constant memory.

Every row is checked against its format; all rows must share the format of the first one
(trainers take one format per dataset), and that format must fit the job's method when the
method is known. Problems are collected for the whole file, the first 20 shown, all counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    allowed = METHOD_FORMATS[method] if method else FORMATS
    log = ProblemLog()
    n_examples = 0
    file_format: str | None = None
    first_line = 0
    shape: str | None = None
    check = None
    plain_chat = False
    conversational: bool | None = None  # preference files: messages or plain strings
    for line_no, obj, problem in read_rows(path):
        if obj is None:
            log.add(line_no, [problem])  # type: ignore[list-item]
            continue
        n_examples += 1
        # The common row of a chat file, accepted at parsing speed (chat_problems would too).
        if plain_chat and len(obj) == 1 and plain_messages_ok(obj.get("messages")):
            continue
        fmt = detect_format(obj, method)
        if file_format is None:
            if fmt == "unknown":
                log.add(line_no, [unknown_row_problem(obj)])
                continue
            if fmt not in allowed:
                raise DatasetError(
                    f"Invalid {param}: line {line_no} is {describe_row(obj, fmt)}, but a {method} job "
                    f"needs {method_formats_text(method)} examples.",
                    param=param,  # type: ignore[arg-type]
                    problems=[f"line {line_no}: {describe_row(obj, fmt)}"],
                )
            file_format, first_line, check = fmt, line_no, SPECS[fmt].check
            plain_chat = fmt == "chat"
            conversational = is_conversational(obj) if fmt == "preference" else None
            shape = preference_shape(obj) if fmt == "preference" else None
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
            log.add(line_no, [f"expected a {file_format.replace('_', '/')} example like line {first_line}, got {what}"])
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
    if log.total:
        raise log.error(param)
    if file_format is None:
        raise DatasetError(
            f"Invalid {param}: the file holds no examples (it is empty or has only blank lines).", param=param
        )
    if n_examples < min_examples:
        raise DatasetError(
            f"Invalid {param}: the file has {n_examples} example{'s' if n_examples != 1 else ''}; "
            f"at least {min_examples} are needed.",
            param=param,
        )
    return DatasetSummary(n_examples=n_examples, format=file_format, shape=shape)


def validate_supervised_file(path: Path, param: str = "training_file") -> DatasetSummary:
    return validate_file(path, method="supervised", param=param)
