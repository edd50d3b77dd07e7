"""The `validating_files` step of a job: its data read and checked (job_data.py), its "auto"
values resolved (hyperparameters.py), then the job queued, or failed with an error that names
the file and the line. JobService.validate_pending hands the waiting jobs over."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa

from polytune.catalog.models import Catalog
from polytune.data.formats import LABELS, METHOD_FORMATS, method_formats_text
from polytune.domain.errors import InvalidRequest
from polytune.domain.job import JobError, JobStatus
from polytune.domain.spec import JobSpec
from polytune.services.job_data import DataCheckFailed, JobDataChecker
from polytune.services.validation_queue import FairValidationQueue
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.db import Database

log = logging.getLogger("polytune.services.jobs")  # the name its lines had before the split


class JobValidation:
    def __init__(self, db: Database, blobs: BlobStore, catalog: Catalog, *, min_examples: int, workers: int):
        self.db, self.catalog = db, catalog
        self.data = JobDataChecker(blobs, catalog, min_examples=min_examples)
        self._queue = FairValidationQueue(self._validate_one, workers=workers)

    def pending(self) -> int:
        """Hand every job in `validating_files` to the validation threads, which read its data
        and queue it with "auto" resolved, or fail it with an error that names the file and
        the line. Threads of their own, because checking and counting the tokens of a big file
        takes minutes and the scheduler must go on dispatching and cancelling meanwhile; a few,
        taken fairly by organization (validation_queue.py), so one organization's big files do
        not hold another's small job (a job interrupted by a restart is simply validated
        again). Returns how many it handed over."""
        with self.db.session() as s:
            rows = s.execute(
                sa.select(t.Job.id, t.Job.org_id)
                .where(t.Job.status == JobStatus.VALIDATING_FILES.value)
                .order_by(t.Job.seq)
            ).all()
        return self._queue.add((job_id, org_id) for job_id, org_id in rows)

    def _validate_one(self, job_id: str) -> None:
        from polytune.services.hyperparameters import resolve_auto

        with self.db.session() as s:
            row = job_store.get_row(s, job_id)
            if row is None or row.status != JobStatus.VALIDATING_FILES.value:
                return
            spec = JobSpec.model_validate(row.spec)
        error: JobError | None = None
        resolved = check = None
        try:
            check = self.data.check(spec)
            resolved = resolve_auto(
                spec, n_examples=check.n_examples, n_tokens=check.n_tokens, entry=self.catalog.get(spec.model)
            )
            check.finish(int(resolved.hyperparameters.n_epochs))
        except DataCheckFailed as e:
            error = e.error
        except InvalidRequest as e:
            error = JobError(code="invalid_hyperparameters", message=e.message, param=e.param)
        except Exception as e:  # a bug must fail this job, not stall every scheduler pass after it
            log.exception("validating job %s failed", job_id)
            error = JobError(
                code="validation_error", message=f"Validation failed unexpectedly: {type(e).__name__}: {e}"
            )
        with self.db.session() as s:
            row = job_store.get_row(s, job_id, lock=True)
            if row is None or row.status != JobStatus.VALIDATING_FILES.value:
                return  # cancelled meanwhile
            if error is not None:
                job_store.transition(
                    s,
                    row,
                    JobStatus.FAILED,
                    f"Validation failed: {error.message}",
                    level="error",
                    error=_error_dict(error),
                )
                return
            assert resolved is not None and check is not None
            for level, message, data in check.events:
                job_store.add_event(s, job_id, message, level=level, data=data)
            report = check.report
            job_store.transition(
                s,
                row,
                JobStatus.QUEUED,
                f"Files validated: {check.n_examples:,} training examples, {check.n_tokens:,} tokens; "
                f"{report['n_epochs']} epochs make {report['billable_tokens']:,} billable tokens; job queued",
                spec=resolved.model_dump(mode="json"),
                data_report=report,
                trained_tokens=report["billable_tokens"],
            )


def _error_dict(e: JobError) -> dict[str, Any]:
    return {"code": e.code, "message": e.message, "param": e.param}


def check_format(row: t.File, method: str, param: str) -> None:
    """A dpo job on a file whose upload check found no preference pairs is refused at once:
    preference rows are told apart by their keys alone, so the mismatch is certain before any
    data is read again. (Other mismatches fail the job when its files are validated.)"""
    fmt = (row.data_report or {}).get("format")
    if method != "dpo" or fmt is None or fmt in METHOD_FORMATS["dpo"]:
        return
    raise InvalidRequest(
        f"File '{row.id}' holds {LABELS.get(fmt, fmt)} examples; a dpo job trains on "
        f"{method_formats_text('dpo')} examples.",
        param=param,
        code="invalid_file_format",
    )
