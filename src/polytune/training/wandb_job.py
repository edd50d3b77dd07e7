"""The worker's W&B glue: find the job's key, start its run, and at the end attach the run
directory to the job. training/wandb_run.py holds the W&B side itself."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polytune.config import Settings
from polytune.domain.spec import JobSpec
from polytune.store import worker as worker_store
from polytune.store.db import Database
from polytune.training.reporter import Reporter
from polytune.training.wandb_run import WandbReporter, WandbRun, start_run, warn


@dataclass
class JobWandb:
    runs: list[WandbRun]  # one per W&B integration of the job that could start
    folder: Path  # the job's folder; the run directories are in folder/wandb

    def reporter(self, inner: Reporter) -> Reporter:
        return WandbReporter(inner, self.runs)

    def end(
        self, reporter, *, summary: dict[str, Any] | None = None, exit_code: int = 0, attach: bool = True
    ) -> list[str]:
        """Finish the run; with `attach`, store the run directory as a result file of the job
        (its file id is returned) and clear the job's folder. Without it (a pause), the folder
        stays for the next attempt's run to join it."""
        for run in self.runs:
            run.finish(summary or {}, exit_code=exit_code)
        if not attach:
            return []
        _flush_all(reporter)
        files: list[str] = []
        runs = self.folder / "wandb"
        try:
            if runs.is_dir():
                files.append(reporter.result_archive(runs, f"{reporter.job_id}-wandb.tar"))
        except Exception as e:  # noqa: BLE001 - W&B must never fail the job
            warn(reporter, f"The W&B run directory could not be attached to the job: {type(e).__name__}: {e}")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
        return files


def _flush_all(reporter) -> None:
    """A finished run's file may still be being written by wandb's service (runs started with
    reinit="create_new", several open at once); stopping the service waits until every run is
    on disk, before the folder is archived."""
    try:
        import wandb

        wandb.teardown()
    except Exception as e:  # noqa: BLE001 - W&B must never fail the job
        warn(reporter, f"W&B could not be shut down cleanly: {type(e).__name__}: {e}")


def start_job_wandb(
    settings: Settings, db: Database, spec: JobSpec, job_id: str, org_id: str, reporter: Reporter
) -> JobWandb | None:
    if not spec.integrations:
        return None
    org_key, keys = worker_store.wandb_api_keys(db, settings, job_id, org_id, len(spec.integrations))
    folder = settings.resolved_data_dir / "jobs" / job_id
    runs = []
    for i, key in enumerate(keys):
        key, source = (key, "job") if key is not None else (org_key, "organization")
        run = start_run(
            spec,
            job_id,
            folder,
            reporter,
            api_key=key,
            key_source=source if key else None,
            mode=settings.wandb_mode,
            init_timeout=settings.wandb_init_timeout,
            index=i,
        )
        if run is not None:
            runs.append(run)
    return JobWandb(runs, folder) if runs else None
