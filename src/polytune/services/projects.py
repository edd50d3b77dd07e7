"""Projects: named groups of jobs with integer ids (SeekrFlow files every job under one)."""

from __future__ import annotations

import sqlalchemy as sa

from polytune.domain.errors import InvalidRequest, NotFound
from polytune.domain.job import JobStatus
from polytune.domain.objects import ProjectInfo
from polytune.store import tables as t
from polytune.store.db import Database, now

NAME_CHARS = (5, 100)
DESCRIPTION_CHARS = (5, 1000)


def _check_length(value: str, bounds: tuple[int, int], param: str) -> None:
    low, high = bounds
    if not low <= len(value.strip()) <= high:
        raise InvalidRequest(f"{param} must be {low}-{high} characters, got {len(value.strip())}.", param=param)


class ProjectService:
    def __init__(self, db: Database):
        self.db = db

    def create(self, org_id: str, *, name: str, description: str) -> ProjectInfo:
        _check_length(name, NAME_CHARS, "name")
        _check_length(description, DESCRIPTION_CHARS, "description")
        created = now()
        with self.db.session() as s:
            row = t.Project(
                org_id=org_id,
                name=name.strip(),
                description=description.strip(),
                created_at=created,
                updated_at=created,
            )
            s.add(row)
            s.flush()
            return self._info(s, row)

    def get(self, org_id: str, project_id: int) -> ProjectInfo:
        with self.db.session() as s:
            row = s.scalar(sa.select(t.Project).where(t.Project.id == project_id, t.Project.org_id == org_id))
            if row is None:
                raise NotFound(f"No project found with id {project_id}.", param="project_id")
            return self._info(s, row)

    def list(self, org_id: str, *, skip: int = 0, limit: int = 100) -> list[ProjectInfo]:
        if skip < 0:
            raise InvalidRequest("skip must not be negative.", param="skip")
        if not 1 <= limit <= 10_000:
            raise InvalidRequest("limit must be between 1 and 10000.", param="limit")
        with self.db.session() as s:
            rows = s.scalars(
                sa.select(t.Project)
                .where(t.Project.org_id == org_id)
                .order_by(t.Project.id.desc())
                .offset(skip)
                .limit(limit)
            )
            return [self._info(s, r) for r in rows]

    def _info(self, s, row: t.Project) -> ProjectInfo:
        owner = s.scalar(sa.select(t.Organization.seq).where(t.Organization.id == row.org_id)) or 0
        runs, succeeded, latest = s.execute(
            sa.select(
                sa.func.count(t.Job.id),
                sa.func.count(t.Job.id).filter(t.Job.status == JobStatus.SUCCEEDED.value),
                sa.func.max(sa.func.coalesce(t.Job.finished_at, t.Job.created_at)),
            ).where(t.Job.project_id == row.id)
        ).one()
        return ProjectInfo(
            id=row.id,
            org_id=row.org_id,
            name=row.name,
            description=row.description,
            created_at=row.created_at,
            updated_at=row.updated_at,
            owner_number=owner,
            runs=runs,
            runs_succeeded=succeeded,
            last_modified=max(row.updated_at, latest or 0),
        )
