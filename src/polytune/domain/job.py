"""Job statuses and the transitions between them: the one place that says what may follow what."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidRequest
from .spec import JobSpec


class JobStatus(str, enum.Enum):
    # Accepted and checked, but waiting for an explicit start (JobService.start): the scheduler
    # picks up neither this nor anything else until the job moves to validating_files. APIs
    # that create and start in one call never use it; APIs with a separate "run" action do.
    CREATED = "created"
    VALIDATING_FILES = "validating_files"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSING = "pausing"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

_S = JobStatus
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    _S.CREATED: frozenset({_S.VALIDATING_FILES, _S.CANCELLED}),
    _S.VALIDATING_FILES: frozenset({_S.QUEUED, _S.FAILED, _S.CANCELLED}),
    _S.QUEUED: frozenset({_S.RUNNING, _S.FAILED, _S.CANCELLED, _S.PAUSED}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.CANCELLED, _S.PAUSING, _S.QUEUED}),
    _S.PAUSING: frozenset({_S.PAUSED, _S.FAILED, _S.CANCELLED, _S.SUCCEEDED}),
    _S.PAUSED: frozenset({_S.QUEUED, _S.CANCELLED}),
    _S.SUCCEEDED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}


class IllegalTransition(InvalidRequest):
    code = "invalid_job_state"


def check_transition(current: JobStatus, target: JobStatus) -> None:
    """Raise IllegalTransition unless `current -> target` is allowed."""
    if target not in ALLOWED[current]:
        if current.terminal:
            msg = f"Job has already {current.value}; it can't become {target.value}."
        else:
            msg = f"A job that is {current.value} can't become {target.value}."
        raise IllegalTransition(msg)


@dataclass
class JobError:
    code: str
    message: str
    param: str | None = None


@dataclass
class Job:
    """What the service knows of one job; every dialect renders its responses from this."""

    id: str
    org_id: str
    spec: JobSpec
    status: JobStatus
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    fine_tuned_model: str | None = None
    error: JobError | None = None
    result_files: list[str] = field(default_factory=list)
    trained_tokens: int | None = None
    trained_steps: int = 0
    total_steps: int | None = None
    estimated_finish: int | None = None
    project_id: int | None = None
    # What validation found in the data (services/job_data.py): examples, tokens, long
    # examples dropped or truncated, billable tokens. None until the files are validated.
    data_report: dict[str, Any] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
