"""Reading and writing secrets: job secrets (given with a job) and organization secrets (set by
an administrator). Values go in and out through a SecretBox: the tables hold ciphertext only."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from polytune.store import tables as t
from polytune.store.db import now
from polytune.store.secret_box import SecretBox

# The organization secret with its W&B key (job secrets: domain.spec.wandb_key_secret).
WANDB_API_KEY = "wandb_api_key"


def add_job_secret(s: Session, box: SecretBox, job_id: str, name: str, value: str) -> None:
    s.add(t.JobSecret(job_id=job_id, name=name, value=box.encrypt(value)))


def job_secret(s: Session, box: SecretBox, job_id: str, name: str) -> str | None:
    token = s.scalar(
        sa.select(t.JobSecret.value)
        .where(t.JobSecret.job_id == job_id, t.JobSecret.name == name)
        .order_by(t.JobSecret.seq.desc())
        .limit(1)
    )
    return box.decrypt(token) if token is not None else None


def set_org_secret(s: Session, box: SecretBox, org_id: str, name: str, value: str | None) -> None:
    """Set (or, with None, remove) one of the organization's secrets."""
    s.execute(sa.delete(t.OrgSecret).where(t.OrgSecret.org_id == org_id, t.OrgSecret.name == name))
    if value is not None:
        s.add(t.OrgSecret(org_id=org_id, name=name, value=box.encrypt(value), updated_at=now()))


def org_secret(s: Session, box: SecretBox, org_id: str, name: str) -> str | None:
    token = s.scalar(sa.select(t.OrgSecret.value).where(t.OrgSecret.org_id == org_id, t.OrgSecret.name == name))
    return box.decrypt(token) if token is not None else None
