"""Rows written straight into a real database, for tests of the store and the scheduler."""

from __future__ import annotations

from polytune.domain.ids import new_id
from polytune.domain.job import JobStatus
from polytune.domain.spec import JobSpec
from polytune.store import tables as t
from polytune.store.db import Database, now


def add_org(db: Database) -> str:
    with db.session() as s:
        org = t.Organization(id=new_id("org"), name=new_id("n"), created_at=now())
        s.add(org)
    return org.id


def add_job(db: Database, org_id: str, status: JobStatus = JobStatus.QUEUED, **fields) -> str:
    spec = JobSpec(model="polytune-tiny", training_files=["file-x"])
    with db.session() as s:
        row = t.Job(
            id=new_id("ftjob"),
            org_id=org_id,
            status=status.value,
            spec=spec.model_dump(mode="json"),
            created_at=now(),
            result_files=[],
            trained_steps=0,
            attempts=fields.pop("attempts", 0),
            **fields,
        )
        s.add(row)
    return row.id
