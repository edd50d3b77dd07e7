"""The worker's store: every read and write a training worker makes, as named operations
(training/ imports no table). StoreReporter is the Reporter a worker trains with: it writes
events, metrics, progress and checkpoints; the functions below load the job, record its results
and end it."""

from __future__ import annotations

import contextlib
import errno
import shutil
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from polytune.config import Settings
from polytune.domain.ids import new_id
from polytune.domain.job import IllegalTransition, Job, JobStatus
from polytune.domain.spec import wandb_key_secret
from polytune.store import folder_tar
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.blobs import BlobStore
from polytune.store.checkpoint_parts import resume_key, wait_for_parts
from polytune.store.db import Database, now
from polytune.store.files import add_file
from polytune.store.secret_box import SecretBox
from polytune.store.uploads import BackgroundUploads, stage
from polytune.store.secrets import WANDB_API_KEY, job_secret, org_secret

_STOP_POLL_SECONDS = 1.0


def load_running(db: Database, job_id: str) -> tuple[Job, int | None, str | None, str] | None:
    """The running job (domain), its resume step and checkpoint key, and its organization's name;
    None when the job is not running (cancelled meanwhile, or taken over)."""
    with db.session() as s:
        row = job_store.get_row(s, job_id)
        if row is None or row.status != JobStatus.RUNNING.value:
            return None
        org_name = s.scalar(sa.select(t.Organization.name).where(t.Organization.id == row.org_id)) or row.org_id
        return job_store.to_domain(row), row.resume_step, row.resume_key, org_name


def finish(
    db: Database,
    job_id: str,
    target: JobStatus,
    message: str,
    *,
    from_: tuple[JobStatus, ...] = (JobStatus.RUNNING, JobStatus.PAUSING),
    **fields: Any,
) -> None:
    """Move the job to `target` if it is still in one of `from_`; otherwise (cancelled or taken
    over meanwhile) the store already says how it ended, and nothing changes."""
    with db.session() as s:
        row = job_store.get_row(s, job_id, lock=True)
        if row is None or row.status not in {f.value for f in from_}:
            return
        try:
            job_store.transition(
                s, row, target, message, level="error" if target == JobStatus.FAILED else "info", **fields
            )
        except (IllegalTransition, job_store.StaleTransition):
            return


def drop_resume_checkpoint(db: Database, blobs: BlobStore, job_id: str) -> None:
    """Delete a finished job's resume checkpoint (and the row's pointer to it)."""
    with db.session() as s:
        key = s.scalar(sa.select(t.Job.resume_key).where(t.Job.id == job_id))
        s.execute(sa.update(t.Job).where(t.Job.id == job_id).values(resume_key=None))
    if key:
        blobs.delete(key)


def metrics_events(db: Database, job_id: str) -> list[dict[str, Any]]:
    """The data of the job's metrics events, oldest first (every attempt's)."""
    with db.session() as s:
        return list(
            s.scalars(
                sa.select(t.JobEvent.data)
                .where(t.JobEvent.job_id == job_id, t.JobEvent.type == "metrics")
                .order_by(t.JobEvent.seq)
            )
        )


def add_result_file(db: Database, blobs: BlobStore, *, org_id: str, filename: str, data: bytes) -> str:
    """A result file of the organization holding `data`; returns its id."""
    file_id = new_id("file")
    with blobs.writer(f"files/{file_id}") as f:
        f.write(data)
    with db.session() as s:
        add_file(s, file_id=file_id, org_id=org_id, filename=filename, purpose="fine-tune-results", size=len(data))
    return file_id


def add_model(
    db: Database, *, model_id: str, org_id: str, job_id: str, base_model: str, kind: str, blob_key: str
) -> None:
    """The job's fine-tuned model, servable from `blob_key`."""
    with db.session() as s:
        s.add(
            t.Model(
                id=model_id,
                org_id=org_id,
                job_id=job_id,
                base_model=base_model,
                kind=kind,
                is_checkpoint=False,
                blob_key=blob_key,
                created_at=now(),
            )
        )


def wandb_api_keys(
    db: Database, settings: Settings, job_id: str, org_id: str, n: int
) -> tuple[str | None, list[str | None]]:
    """The organization's W&B key, and the key given with each of the job's `n` integrations
    (Nebius) or None: an integration's own key wins over the organization's (OpenAI's style)."""
    box = SecretBox.from_settings(settings)
    with db.session() as s:
        org_key = org_secret(s, box, org_id, WANDB_API_KEY)
        keys = [job_secret(s, box, job_id, wandb_key_secret(i)) for i in range(n)]
    return org_key, keys


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


class StoreReporter:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        *,
        job_id: str,
        org_id: str,
        base_model: str,
        model_name: str,
        adapter_kind: str,
        publish_samples: Callable[[int, Path], str | None] | None = None,
    ):
        self.db, self.blobs = db, blobs
        # (step, local folder of PNGs) -> the folder's path where it was published (a repository), or None.
        self.publish_samples = publish_samples
        self.job_id, self.org_id, self.base_model = job_id, org_id, base_model
        self.model_name, self.adapter_kind = model_name, adapter_kind
        self.total_steps: int | None = None
        self._last_poll = 0.0
        self._request: str | None = None
        # Set from the SIGTERM handler: the machine is going away, come back later.
        self.preempted = False
        self.uploads = BackgroundUploads()
        self.fatal_upload_error: OSError | None = None
        # The job's workers: with several, a resume checkpoint is whole only once every rank
        # has stored its part of it (checkpoint_parts.py).
        self.ranks = 1

    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        with self.db.session() as s:
            job_store.add_event(s, self.job_id, message, level=level, data=data)

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        total = f"/{self.total_steps}" if self.total_steps else ""
        parts = ", ".join(f"{k.replace('_', ' ')}={_fmt(v)}" for k, v in metrics.items() if v is not None)
        with self.db.session() as s:
            job_store.add_event(
                s,
                self.job_id,
                f"Step {step}{total}: {parts}",
                type="metrics",
                data={"step": step, **{k: v for k, v in metrics.items() if v is not None}},
            )

    def progress(
        self, *, trained_steps: int, total_steps: int, trained_tokens: int, estimated_finish: int | None
    ) -> None:
        self.total_steps = total_steps
        with self.db.session() as s:
            s.execute(
                sa.update(t.Job)
                .where(t.Job.id == self.job_id, t.Job.status == JobStatus.RUNNING.value)
                .values(
                    trained_steps=trained_steps,
                    total_steps=total_steps,
                    estimated_finish=estimated_finish,
                    heartbeat_at=time.time(),
                )
            )

    def heartbeat(self) -> None:
        with self.db.session() as s:
            s.execute(sa.update(t.Job).where(t.Job.id == self.job_id).values(heartbeat_at=time.time()))

    def checkpoint(self, step: int, local_dir: Path, metrics: dict[str, float]) -> str:
        model_id = f"{self.model_name}:ckpt-step-{step}"
        with self.db.session() as s:
            # A resumed run reaches again an epoch end it had already reported.
            if s.scalar(sa.select(t.Model.id).where(t.Model.id == model_id)):
                return model_id
        key = f"models/{self.job_id}/ckpt-step-{step}"
        started = time.monotonic()
        self.blobs.put_dir(local_dir, key)
        stored = {
            "bytes": sum(p.stat().st_size for p in local_dir.rglob("*") if p.is_file()),
            "store_seconds": round(time.monotonic() - started, 3),
        }
        # Stored once: the downloadable tar is this folder archived as it streams (folder_tar.py).
        archive_id = new_id("file")
        archive_bytes = folder_tar.tar_size(folder_tar.members(self.blobs, key, f"ckpt-step-{step}"))
        with self.db.session() as s:
            add_file(
                s,
                file_id=archive_id,
                org_id=self.org_id,
                filename=f"{self.job_id}-ckpt-step-{step}.tar",
                purpose="fine-tune-results",
                size=archive_bytes,
                blob_key=key,
            )
            s.add(
                t.Checkpoint(
                    id=new_id("ftckpt"),
                    job_id=self.job_id,
                    org_id=self.org_id,
                    step=step,
                    created_at=now(),
                    metrics={k: v for k, v in metrics.items() if v is not None},
                    model_id=model_id,
                    result_files=[archive_id],
                )
            )
            s.add(
                t.Model(
                    id=model_id,
                    org_id=self.org_id,
                    job_id=self.job_id,
                    base_model=self.base_model,
                    kind=self.adapter_kind,
                    is_checkpoint=True,
                    blob_key=key,
                    created_at=now(),
                )
            )
            job_store.add_event(
                s, self.job_id, f"Checkpoint created at step {step}", data={"step": step, "model": model_id, **stored}
            )
        return model_id

    def result_archive(self, local_dir: Path, filename: str) -> str:
        """A folder the job made (its W&B run) as a tar result file of the job's organization."""
        # Links left out: W&B's run folders link to logs elsewhere and to the latest run.
        file_id, size = self._archive(local_dir, local_dir.name, keep=lambda m: None if m.issym() or m.islnk() else m)
        with self.db.session() as s:
            add_file(s, file_id=file_id, org_id=self.org_id, filename=filename, purpose="fine-tune-results", size=size)
        return file_id

    def _archive(self, local_dir: Path, name: str, keep=None) -> tuple[str, int]:
        """A local folder as one tar file in blob storage (a file id users can download). Plain
        tar: what is archived barely compresses, and tar streams."""
        file_id = new_id("file")
        with self.blobs.writer(f"files/{file_id}") as out, tarfile.open(fileobj=out, mode="w|") as tar:
            tar.add(local_dir, arcname=name, filter=keep)
        return file_id, self.blobs.size(f"files/{file_id}")

    def samples(self, step: int, files: list[Path], prompts: list[str], *, seconds: float) -> None:
        """Keep the PNGs in blob storage (jobs/<id>/samples/step-<n>/), publish them beside the
        weights when the job has a repository, and say so in an event."""
        folder = files[0].parent if files else None
        key = f"jobs/{self.job_id}/samples/step-{step}"
        if folder is not None:
            self.blobs.put_dir(folder, key)
        published = self.publish_samples(step, folder) if (folder is not None and self.publish_samples) else None
        where = published or key
        self.event(
            f"Samples at step {step}: {len(files)} image{'s' if len(files) != 1 else ''} in {where}/",
            data={
                "step": step,
                "samples": [{"prompt": p, "path": f"{where}/{f.name}"} for p, f in zip(prompts, files)],
                "seconds_per_sample": seconds / len(files) if files else None,
            },
        )

    def resume_checkpoint(self, step: int, trainer_dir: Path) -> None:
        """Stage the trainer's folder (hard links) and store it in the background (uploads.py):
        training goes on meanwhile; wait_uploads() before the job ends."""
        staged = stage(trainer_dir, trainer_dir.parent / ".uploading" / f"step-{step}")
        self.uploads.submit(lambda: self._store_resume(step, staged))

    def wait_uploads(self, *, strict: bool = False) -> None:
        """Wait until every resume checkpoint handed over is stored. `strict`: raise the newest
        one's error (a pause or preemption needs the checkpoint it just saved)."""
        error = self.uploads.wait()
        if strict and error is not None:
            raise error

    def _store_resume(self, step: int, staged: Path) -> None:
        key = resume_key(self.job_id, step)
        started, recorded = time.monotonic(), False
        try:
            self.blobs.put_dir(staged, key)
            size = sum(p.stat().st_size for p in staged.rglob("*") if p.is_file())
            if self.ranks > 1:  # the other ranks' parts, and their bytes
                size += wait_for_parts(self.blobs, key, self.ranks)
            # The row points at the new checkpoint only once all of it is stored, so a crash
            # during the copy leaves the previous one in force, intact.
            with self.db.session() as s:
                old = s.scalar(sa.select(t.Job.resume_key).where(t.Job.id == self.job_id))
                s.execute(
                    sa.update(t.Job)
                    .where(t.Job.id == self.job_id)
                    .values(resume_step=step, resume_key=key, heartbeat_at=time.time())
                )
                job_store.add_event(
                    s,
                    self.job_id,
                    f"Resume checkpoint at step {step} stored",
                    data={"step": step, "bytes": size, "upload_seconds": round(time.monotonic() - started, 3)},
                )
            recorded = True
            if old and old != key:
                self.blobs.delete(old)
        except Exception as e:
            if isinstance(e, OSError) and e.errno == errno.ENOSPC:
                # Storage is full: no later checkpoint will fit either, so the job stops at its
                # next step and fails with storage_full (runner.py) instead of training on unprotected.
                self.fatal_upload_error = e
            if not recorded:  # a partial folder must not be mistaken for a checkpoint
                with contextlib.suppress(OSError):
                    self.blobs.delete(key)
            self.event(
                f"Storing the resume checkpoint at step {step} failed ({type(e).__name__}: {e}); "
                "the previous one stays in force and training goes on",
                level="error",
                data={"step": step},
            )
            raise
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def stop_request(self) -> str | None:
        if self.fatal_upload_error is not None:
            raise self.fatal_upload_error
        if self._request is None and self.preempted:
            self._request = "preempt"
        if self._request is None and time.monotonic() - self._last_poll >= _STOP_POLL_SECONDS:
            self._last_poll = time.monotonic()
            with self.db.session() as s:
                status, worker = s.execute(
                    sa.select(t.Job.status, t.Job.worker).where(t.Job.id == self.job_id)
                ).one_or_none() or (None, None)
            if status == JobStatus.RUNNING.value and (worker or {}).get("preempt"):
                # An executor that can't signal the worker's process (it runs on another
                # node) asks through the store: store.jobs.request_preemption.
                self._request = "preempt"
            elif status == JobStatus.PAUSING.value:
                self._request = "pause"
            elif status != JobStatus.RUNNING.value:
                self._request = "cancel"
        return self._request
