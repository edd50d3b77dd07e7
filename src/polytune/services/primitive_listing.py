"""The REST routes' view of the Tinker API's training runs (RestClient: list_training_runs,
get_training_run, list_checkpoints): read from the jobs of method `primitives` and the
checkpoint folders, for PrimitiveRuns (services/primitive_runs.py), which this is a part of."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from polytune.domain.errors import NotFound
from polytune.domain.job import JobStatus
from polytune.domain.spec import method_type
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.db import Database


class RunListing:
    db: Database
    root: Path
    _runs: dict[str, Any]  # model id -> live Run
    _lock: threading.Lock

    def loaded_ids(self, org_id: str, prefix: str) -> list[str]:
        """The model ids of an organization's live runs that start with `prefix` (a session's)."""
        with self._lock:
            return [m for m, run in self._runs.items() if run.org_id == org_id and m.startswith(prefix)]

    def job_id(self, org_id: str, run_id: str) -> str:
        """A run named by its model id (live runs) or its job id (any run of the organization)."""
        with self._lock:
            run = self._runs.get(run_id)
        if run is not None and run.org_id == org_id:
            return run.job_id
        with self.db.session() as s:
            row = job_store.get_row(s, run_id, org_id=org_id)
            if row is None or method_type(row.spec or {}) != "primitives":
                raise NotFound(f"No training run '{run_id}'.", param="training_run_id")
            return row.id

    def list_runs(self, org_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
        with self.db.session() as s:
            rows = [
                r
                for r in s.scalars(sa.select(t.Job).where(t.Job.org_id == org_id).order_by(t.Job.seq.desc()))
                if method_type(r.spec or {}) == "primitives"
            ]
            described = [self._describe(r) for r in rows[offset : offset + limit]]
        return described, len(rows)

    def describe(self, org_id: str, run_id: str) -> dict:
        job_id = self.job_id(org_id, run_id)
        with self.db.session() as s:
            row = job_store.get_row(s, job_id, org_id=org_id)
            assert row is not None  # job_id() found it
            return self._describe(row)

    def _describe(self, row: t.Job) -> dict:
        checkpoints = self.checkpoints(row.id)
        last = lambda kind: next((c for c in reversed(checkpoints) if c["checkpoint_type"] == kind), None)  # noqa: E731
        return {
            "training_run_id": row.id,
            "base_model": row.spec["model"],
            "model_owner": row.org_id,
            "is_lora": True,
            "lora_rank": row.spec["adapter"]["lora"]["r"],
            "corrupted": row.status == JobStatus.FAILED.value,
            "last_request_time": _iso(row.finished_at or row.started_at or row.created_at),
            "last_checkpoint": last("training"),
            "last_sampler_checkpoint": last("sampler"),
        }

    def checkpoints(self, job_id: str) -> list[dict]:
        """A run's saved states and sampler weights, oldest first."""
        found = []
        kinds = (("training", "weights"), ("sampler", "sampler_weights"), ("external", "external_weights"))
        for kind, folder_name in kinds:
            for folder in (self.root / job_id / folder_name).glob("*"):
                if folder.is_dir():
                    found.append(
                        {
                            "checkpoint_id": f"{folder_name}/{folder.name}",
                            "checkpoint_type": kind,
                            "time": _iso(folder.stat().st_mtime),
                            "tinker_path": f"tinker://{job_id}/{folder_name}/{folder.name}",
                            "size_bytes": folder_size(folder),
                        }
                    )
        return sorted(found, key=lambda c: c["time"])


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat()
