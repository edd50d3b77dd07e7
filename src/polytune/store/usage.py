"""What an organization holds right now, as its quotas count it (services/quotas.py)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.domain.job import TERMINAL
from polytune.store import tables as t


def lock_org(s: Session, org_id: str) -> None:
    """Hold the organization's row until the transaction ends, so two requests that each
    check a quota and then add to it do so one after the other (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    s.execute(sa.select(t.Organization.id).where(t.Organization.id == org_id).with_for_update())


def unfinished_jobs(s: Session, org_id: str) -> int:
    """Jobs not yet succeeded, failed or cancelled: created, validating, queued, running,
    pausing or paused (each holds, or will take, the service's time)."""
    return (
        s.scalar(
            sa.select(sa.func.count())
            .select_from(t.Job)
            .where(t.Job.org_id == org_id, t.Job.status.not_in([status.value for status in TERMINAL]))
        )
        or 0
    )


def storage_bytes(s: Session, org_id: str) -> int:
    """Bytes the organization stores: its files, the parts of its unfinished uploads, and the
    files of its repositories."""
    files = sa.select(sa.func.coalesce(sa.func.sum(t.File.bytes), 0)).where(
        t.File.org_id == org_id, t.File.deleted_at.is_(None)
    )
    parts = (
        sa.select(sa.func.coalesce(sa.func.sum(t.UploadPart.bytes), 0))
        .join(t.Upload, t.Upload.id == t.UploadPart.upload_id)
        .where(t.Upload.org_id == org_id, t.Upload.status == "pending")
    )
    repo_files = (
        sa.select(sa.func.coalesce(sa.func.sum(t.RepoFile.bytes), 0))
        .join(t.Repo, t.Repo.id == t.RepoFile.repo_id)
        .where(t.Repo.org_id == org_id)
    )
    return sum(int(s.scalar(q) or 0) for q in (files, parts, repo_files))
