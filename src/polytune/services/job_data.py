"""The data side of `validating_files`: every file of a job checked against its method,
counted in the base model's tokens, and long examples dropped or truncated by the job's
policy. The result is the job's data report and the events that tell the user about it.

Runs where the scheduler runs (the API server): the tokenizer is loaded once per model and
kept, and files are read as a stream, so memory does not grow with their size.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polytune.data.problems import DatasetError
from polytune.data.reinforcement import item_fields
from polytune.data.tokens import LongExamples, TokenCounter, TokenReport, check_and_measure, load_tokenizer
from polytune.data.validate import DatasetSummary, validate_file
from polytune.domain.errors import InvalidRequest
from polytune.domain.job import JobError
from polytune.domain.spec import IMAGE_METHODS, JobSpec
from polytune.store.blobs import BlobStore, local_copy
from polytune.catalog.models import Catalog, CatalogEntry

_WHAT = {"training_file": "training", "validation_file": "validation"}


class DataCheckFailed(Exception):
    def __init__(self, error: JobError):
        super().__init__(error.message)
        self.error = error


@dataclass
class DataCheck:
    n_examples: int  # training examples kept for training
    n_tokens: int  # their tokens
    report: dict[str, Any]
    # (level, message, data) for the job's events, in order.
    events: list[tuple[str, str, dict[str, Any] | None]] = field(default_factory=list)

    def finish(self, n_epochs: int) -> None:
        """Record what the resolved epochs make of the tokens: the billable count."""
        self.report["n_epochs"] = n_epochs
        self.report["billable_tokens"] = self.n_tokens * n_epochs


class JobDataChecker:
    def __init__(self, blobs: BlobStore, catalog: Catalog, *, min_examples: int):
        self.blobs, self.catalog, self.min_examples = blobs, catalog, min_examples
        self._counters: dict[tuple[str, str, str | None, str | None], TokenCounter] = {}
        self._lock = threading.Lock()

    def counter(self, entry: CatalogEntry) -> TokenCounter:
        key = (entry.name, entry.source, entry.chat_template, entry.revision)
        with self._lock:
            if key not in self._counters:
                path = self.catalog.resolve_path(entry)
                self._counters[key] = TokenCounter(load_tokenizer(path, entry.chat_template, **entry.load_options))
            return self._counters[key]

    def check(self, spec: JobSpec) -> DataCheck:
        """Raises DataCheckFailed with the error the job fails with."""
        if spec.method.type in IMAGE_METHODS:
            return self._check_images(spec)
        entry = self.catalog.get(spec.model)
        hp = spec.hyperparameters
        context_length = hp.context_length or entry.max_length
        fields = item_fields(spec.reward.graders) if spec.reward else ()
        files = [("training_file", f) for f in spec.training_files]
        if spec.validation_file:
            files.append(("validation_file", spec.validation_file))
        try:
            counter = self.counter(entry)
        except InvalidRequest as e:
            for param, fid in files:  # the data's own problems first
                self._validate(fid, param, spec.method.type, fields)
            raise DataCheckFailed(
                JobError(code=e.code or "invalid_model", message=e.message, param=e.param or "model")
            ) from e
        # Each file checked and counted in one read of it (tokens.py: check_and_measure).
        measured = [
            self._check_and_measure(fid, param, spec.method.type, fields, counter, context_length, hp.long_examples)
            for param, fid in files
        ]
        n_raw = sum(s.n_examples for (param, _), (s, _) in zip(files, measured) if param == "training_file")
        if n_raw < self.min_examples:
            raise DataCheckFailed(
                JobError(
                    code="invalid_training_file",
                    param="training_file",
                    message=f"The training data has {n_raw} example{'s' if n_raw != 1 else ''}; at least "
                    f"{self.min_examples} are needed.",
                )
            )
        check = DataCheck(
            n_examples=0,
            n_tokens=0,
            report={
                "method": spec.method.type,
                "context_length": context_length,
                "long_examples": hp.long_examples,
                "files": [],
            },
        )
        totals = {"training_file": [0, 0], "validation_file": [0, 0]}
        for (param, fid), (summary, tokens) in zip(files, measured):
            what = _WHAT[param]
            check.report["files"].append(
                {
                    "param": param,
                    "file": fid,
                    "format": summary.format,
                    "shape": summary.shape,
                    "n_lines": summary.n_examples,
                    **tokens.as_dict(),
                }
            )
            check.events.append(
                (
                    "info",
                    f"{what.capitalize()} file {fid}: {summary.describe()}, "
                    f"{tokens.tokens:,} tokens (longest example {tokens.longest:,} tokens)",
                    {
                        "file": fid,
                        "format": summary.format,
                        "n_examples": summary.n_examples,
                        "tokens": tokens.tokens,
                        "longest": tokens.longest,
                    },
                )
            )
            message = tokens.policy_message(what)
            if message:
                check.events.append(
                    (
                        "warn",
                        message,
                        {
                            "file": fid,
                            "n_dropped": tokens.n_dropped,
                            "dropped_lines": tokens.dropped_lines,
                            "n_truncated": tokens.n_truncated,
                            "truncated_lines": tokens.truncated_lines,
                        },
                    )
                )
            totals[param][0] += tokens.n_examples
            totals[param][1] += tokens.tokens
        (n_train, train_tokens), (n_val, val_tokens) = totals["training_file"], totals["validation_file"]
        if n_train < self.min_examples:
            raise DataCheckFailed(
                JobError(
                    code="invalid_training_file",
                    param="training_file",
                    message=f"Only {n_train} of the {n_raw} training examples fit the context length of "
                    f"{context_length} tokens; at least {self.min_examples} are needed. Raise "
                    "hyperparameters.context_length, or set hyperparameters.long_examples to 'truncate'.",
                )
            )
        if spec.validation_file and n_val == 0:
            raise DataCheckFailed(
                JobError(
                    code="invalid_validation_file",
                    param="validation_file",
                    message=f"No validation example fits the context length of {context_length} tokens. Raise "
                    "hyperparameters.context_length, or set hyperparameters.long_examples to 'truncate'.",
                )
            )
        check.n_examples, check.n_tokens = n_train, train_tokens
        check.report.update(
            training_examples=n_train,
            training_tokens=train_tokens,
            validation_examples=n_val,
            validation_tokens=val_tokens,
        )
        return check

    def _check_images(self, spec: JobSpec) -> DataCheck:
        """Image/caption files: every image decodes, every caption is text. Nothing is counted
        in tokens (an image job trains for its steps, not over tokens)."""
        n_train = 0
        check = DataCheck(n_examples=0, n_tokens=0, report={"method": spec.method.type, "files": []})
        for fid in spec.training_files:
            summary = self._validate(fid, "training_file", spec.method.type, ())
            n_train += summary.n_examples
            check.report["files"].append(
                {"param": "training_file", "file": fid, "format": summary.format, "n_lines": summary.n_examples}
            )
            check.events.append(
                (
                    "info",
                    f"Training file {fid}: {summary.describe()}",
                    {"file": fid, "format": summary.format, "n_examples": summary.n_examples},
                )
            )
        if n_train < 1:
            raise DataCheckFailed(
                JobError(
                    code="invalid_training_file",
                    param="training_file",
                    message="The training data has no image/caption examples.",
                )
            )
        check.n_examples = n_train
        check.report.update(training_examples=n_train, training_tokens=0, validation_examples=0, validation_tokens=0)
        return check

    @contextlib.contextmanager
    def _file(self, fid: str, param: str) -> Iterator[Path]:
        """The file's local path; its data problems (or its absence) fail the job on `param`."""
        try:
            with local_copy(self.blobs, f"files/{fid}") as path:
                yield path
        except DatasetError as e:
            raise DataCheckFailed(JobError(code=f"invalid_{param}", message=f"{fid}: {e.message}", param=param)) from e
        except FileNotFoundError as e:
            raise DataCheckFailed(
                JobError(code=f"invalid_{param}", message=f"File {fid} was deleted.", param=param)
            ) from e

    def _validate(self, fid: str, param: str, method: str, fields: tuple[str, ...]) -> DatasetSummary:
        with self._file(fid, param) as path:
            return validate_file(path, method=method, param=param, item_fields=fields)

    def _check_and_measure(
        self,
        fid: str,
        param: str,
        method: str,
        fields: tuple[str, ...],
        counter: TokenCounter,
        context_length: int,
        long_examples: LongExamples,
    ) -> tuple[DatasetSummary, TokenReport]:
        with self._file(fid, param) as path:
            return check_and_measure(
                path,
                counter,
                method=method,
                context_length=context_length,
                long_examples=long_examples,
                param=param,
                item_fields=fields,
            )
