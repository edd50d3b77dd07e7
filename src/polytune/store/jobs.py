"""Jobs in the store: rows <-> domain Jobs, and the one way a status changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.domain.ids import new_id
from polytune.domain.job import Job, JobError, JobStatus, check_transition
from polytune.domain.spec import JobSpec

from . import tables as t
from .db import now


def to_domain(row: t.Job) -> Job:
    return Job(
        id=row.id,
        org_id=row.org_id,
        spec=JobSpec.model_validate(row.spec),
        status=JobStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        fine_tuned_model=row.fine_tuned_model,
        error=JobError(**row.error) if row.error else None,
        result_files=list(row.result_files or []),
        trained_tokens=row.trained_tokens,
        trained_steps=row.trained_steps or 0,
        total_steps=row.total_steps,
        estimated_finish=row.estimated_finish,
        project_id=row.project_id,
        data_report=row.data_report,
    )


def get_row(session: Session, job_id: str, *, org_id: str | None = None, lock: bool = False) -> t.Job | None:
    stmt = sa.select(t.Job).where(t.Job.id == job_id)
    if org_id is not None:
        stmt = stmt.where(t.Job.org_id == org_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalar(stmt)


def add_event(
    session: Session,
    job_id: str,
    message: str,
    *,
    level: str = "info",
    type: str = "message",
    data: dict[str, Any] | None = None,
) -> t.JobEvent:
    ev = t.JobEvent(
        id=new_id("ftevent"), job_id=job_id, created_at=now(), level=level, type=type, message=message, data=data
    )
    session.add(ev)
    return ev


def transition(
    session: Session, row: t.Job, target: JobStatus, message: str, *, level: str = "info", **fields: Any
) -> None:
    """Move `row` to `target` (if the lifecycle allows it), set `fields`, and write the event.

    The UPDATE is conditional on the status read, so two processes racing on one job can't
    both move it: the loser gets a StaleTransition and its transaction rolls back.
    """
    current = JobStatus(row.status)
    check_transition(current, target)
    values = {"status": target.value, **fields}
    if target.terminal:
        values.setdefault("finished_at", now())
    done = session.execute(
        sa.update(t.Job).where(t.Job.id == row.id, t.Job.status == current.value).values(**values)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE's result is a CursorResult, which counts rows
    if done != 1:
        raise StaleTransition(f"job {row.id} changed status while moving to {target.value}")
    session.refresh(row)
    add_event(
        session,
        row.id,
        message,
        level=level,
        data={"status": target.value, **({"error": fields["error"]} if fields.get("error") else {})},
    )


class StaleTransition(RuntimeError):
    """Another process changed the job first."""


def request_preemption(session: Session, job_id: str) -> bool:
    """Ask a running job's worker, wherever it runs, to save a resume checkpoint and step aside
    (the worker reads it with its stop requests; the job is queued again). False when the job
    is not running."""
    row = get_row(session, job_id, lock=True)
    if row is None or row.status != JobStatus.RUNNING.value:
        return False
    row.worker = {**(row.worker or {}), "preempt": True}
    return True
