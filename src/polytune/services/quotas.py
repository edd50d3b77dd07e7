"""Per-organization quotas: what one organization may hold at once, so one tenant cannot take
the service from the others. Each limit is a setting (config.py, README's configuration
table; 0 turns it off) and each refusal names it:

- unfinished jobs (created, validating, queued, running, pausing or paused): a new job beyond
  it is refused with 429 until one finishes or is cancelled;
- stored bytes (files, unfinished uploads' parts, repository files): an upload that would go
  beyond it is refused with 413 and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from polytune.domain.errors import QuotaExceeded, TooLarge
from polytune.store import usage


@dataclass(frozen=True)
class Quotas:
    max_unfinished_jobs: int = 0  # 0: no limit
    max_storage_bytes: int = 0

    @classmethod
    def from_settings(cls, settings) -> Quotas:
        return cls(
            max_unfinished_jobs=settings.max_unfinished_jobs_per_org,
            max_storage_bytes=settings.max_storage_bytes_per_org,
        )

    def check_new_job(self, s: Session, org_id: str) -> None:
        """Inside the transaction that adds the job."""
        if not self.max_unfinished_jobs:
            return
        usage.lock_org(s, org_id)
        held = usage.unfinished_jobs(s, org_id)
        if held >= self.max_unfinished_jobs:
            raise QuotaExceeded(
                f"Job quota exceeded: this organization has {held} unfinished jobs (created, validating, "
                f"queued, running or paused) and may have at most {self.max_unfinished_jobs} "
                "(setting max_unfinished_jobs_per_org, POLYTUNE_MAX_UNFINISHED_JOBS_PER_ORG). Cancel a "
                "job or wait for one to finish.",
                code="job_quota_exceeded",
            )

    def check_storage(self, s: Session, org_id: str, adding: int, *, param: str) -> None:
        """Before `adding` bytes are kept for the organization."""
        if not self.max_storage_bytes:
            return
        usage.lock_org(s, org_id)
        used = usage.storage_bytes(s, org_id)
        if used + adding > self.max_storage_bytes:
            raise TooLarge(
                f"Storage quota exceeded: this organization stores {used} bytes; {adding} more would pass "
                f"its quota of {self.max_storage_bytes} bytes (setting max_storage_bytes_per_org, "
                "POLYTUNE_MAX_STORAGE_BYTES_PER_ORG). Delete files to make room.",
                param=param,
                code="storage_quota_exceeded",
            )
