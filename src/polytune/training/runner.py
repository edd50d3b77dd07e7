"""The worker entry point: `python -m polytune.training.runner JOB_ID`.

Both executors start this. In four steps: `prepare` loads the job, `fit` trains it with its
method's recipe, `publish` stores the weights and results (publish.py, results.py), `finish`
makes the model servable and ends the job. Whatever goes wrong inside fails this job with a
clear error; it never reaches the server.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import os
import signal
import sys
import tempfile
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from polytune.config import Settings
from polytune.catalog.models import Catalog, CatalogEntry
from polytune.domain.job import Job, JobStatus
from polytune.domain.names import model_name
from polytune.domain.spec import JobSpec
from polytune.store import worker as worker_store
from polytune.store.blobs import BlobStore
from polytune.store.db import Database
from polytune.store.private_files import keep_private
from polytune.training.fit_check import underfit_note
from polytune.training.publish import publish, sample_publisher
from polytune.training.results import metrics_rows
from polytune.training.reporter import Reporter

log = logging.getLogger("polytune.worker")
_HEARTBEAT_SECONDS = 10.0


def _load(db: Database, job_id: str):
    """The running job (domain), its resume point and its organization's name; None when the
    job is not running (cancelled meanwhile, or taken over)."""
    loaded = worker_store.load_running(db, job_id)
    if loaded is None:
        log.warning("job %s is not running; nothing to do", job_id)
    return loaded


def _fit(
    blobs: BlobStore,
    settings: Settings,
    spec: JobSpec,
    entry,
    model_path,
    job_id: str,
    work: Path,
    reporter: Reporter,
    resume_step: int | None,
    resume_key: str | None,
):
    """Fetch the resume checkpoint, if any, and train with the method's recipe."""
    from polytune.training.callback import ResumeEvery
    from polytune.training.recipes import get_recipe

    from polytune.training.resume_fetch import resume_folder, with_start_folder

    every = ResumeEvery(steps=settings.resume_checkpoint_steps, seconds=settings.resume_checkpoint_minutes * 60)
    with contextlib.ExitStack() as stack:
        resume_from = None
        if resume_key:
            # Read in place from a file-system store; fetched once per node from object storage.
            resume_from = stack.enter_context(resume_folder(blobs, resume_key, job_id, resume_step or 0))
            reporter.event(f"Resuming from the checkpoint at step {resume_step}", data={"step": resume_step})
        spec = with_start_folder(blobs, spec, work)
        return get_recipe(spec.method.type).fit(
            blobs, settings, spec, entry, model_path, work, reporter, resume_from=resume_from, every=every
        )


def _run_replica(job_id: str, settings: Settings) -> int:
    """A rank other than 0 of a multi-worker job: train beside rank 0, report nothing."""
    from polytune.training.distributed import ReplicaReporter
    from polytune.training.failures import AcceleratorUnavailable, require_accelerator
    from polytune.training.train import TrainingStopped

    try:
        require_accelerator()
    except AcceleratorUnavailable as e:
        # Rank 0 fails the job with the same reason; exiting 0 lets torchrun wait for it.
        log.error("%s", e.message)
        return 0
    db = Database(settings.resolved_database_url)
    blobs = BlobStore(settings.resolved_storage_url)
    try:
        loaded = _load(db, job_id)
        if loaded is None:
            return 0
        job, resume_step, resume_key, _ = loaded
        catalog = Catalog.for_settings(settings, blobs)
        entry = catalog.get(job.spec.model)
        reporter = ReplicaReporter(blobs, job_id)
        with tempfile.TemporaryDirectory(prefix=f"polytune-{job_id}-") as tmp:
            try:
                _fit(
                    blobs,
                    settings,
                    job.spec,
                    entry,
                    catalog.resolve_path(entry, keep=True),
                    job_id,
                    Path(tmp),
                    reporter,
                    resume_step,
                    resume_key,
                )
            except TrainingStopped:
                pass  # rank 0 stopped the job and says so
            finally:
                reporter.uploads.close()  # its checkpoint parts, staged in the work dir, stored
    finally:
        db.dispose()
    return 0


@dataclass
class Prepared:
    """One attempt at a job, ready to train: the job, its base model, the fine-tuned model's
    name, and the reporter that writes its progress to the store."""

    job: Job
    catalog: Catalog
    entry: CatalogEntry
    name: str
    reporter: worker_store.StoreReporter
    resume_step: int | None
    resume_key: str | None


def prepare(db: Database, blobs: BlobStore, settings: Settings, job_id: str) -> Prepared | None:
    """Load the running job and set up its reporter; None when it is not running any more."""
    loaded = _load(db, job_id)
    if loaded is None:
        return None
    job, resume_step, resume_key, org_name = loaded
    spec = job.spec
    catalog = Catalog.for_settings(settings, blobs)
    entry = catalog.get(spec.model)
    name = model_name(spec, org_name, job_id)
    reporter = worker_store.StoreReporter(
        db,
        blobs,
        job_id=job_id,
        org_id=job.org_id,
        base_model=spec.model,
        model_name=name,
        adapter_kind=spec.adapter.kind,
        publish_samples=sample_publisher(db, blobs, spec, job_id),
    )
    from polytune.training.distributed import world_size

    reporter.ranks = world_size()
    return Prepared(job, catalog, entry, name, reporter, resume_step, resume_key)


def fit(
    blobs: BlobStore, settings: Settings, attempt: Prepared, work: Path, reporter: Reporter, placement_note: str | None
):
    """Load the base model and train it with the method's recipe; `reporter` also logs to W&B
    when the job has a run there."""
    from polytune.training.device import resources_note

    spec = attempt.job.spec
    if note := placement_note or resources_note(spec.resources):
        attempt.reporter.event(note, data=spec.resources.model_dump())
    attempt.reporter.event(f"Loading base model {spec.model}")
    model_path = attempt.catalog.resolve_path(attempt.entry, keep=True)  # held for the job
    return _fit(
        blobs,
        settings,
        spec,
        attempt.entry,
        model_path,
        attempt.job.id,
        work,
        reporter,
        attempt.resume_step,
        attempt.resume_key,
    )


def finish(db: Database, attempt: Prepared, result, key: str, result_files: list[str]) -> None:
    """Make the model servable and end the job as succeeded."""
    spec, job_id = attempt.job.spec, attempt.job.id
    if (underfit := underfit_note(metrics_rows(db, job_id), spec)) is not None:
        attempt.reporter.event(underfit[0], level="warn", data=underfit[1])
    worker_store.add_model(
        db,
        model_id=attempt.name,
        org_id=attempt.job.org_id,
        job_id=job_id,
        base_model=spec.model,
        kind=spec.adapter.kind,
        blob_key=key,
    )
    worker_store.finish(
        db,
        job_id,
        JobStatus.SUCCEEDED,
        f"The job has successfully completed: {attempt.name}",
        fine_tuned_model=attempt.name,
        result_files=result_files,
        # What validation billed (tokens x epochs); the trainer's own count is in the event.
        trained_tokens=attempt.job.trained_tokens or result.trained_tokens,
        trained_steps=result.steps,
        estimated_finish=None,
    )


def _fail_without_accelerator(job_id: str, settings: Settings) -> int | None:
    """Fail the job at once, before the training stack is imported, when the executor gave it
    accelerators that this worker's torch cannot use (training/failures.py); None otherwise."""
    from polytune.training.failures import AcceleratorUnavailable, require_accelerator

    try:
        require_accelerator()
        return None
    except AcceleratorUnavailable as e:
        log.error("job %s: %s", job_id, e.message)
        db = Database(settings.resolved_database_url)
        try:
            worker_store.finish(
                db,
                job_id,
                JobStatus.FAILED,
                f"Training failed: {e.message}",
                error={"code": e.code, "message": e.message, "param": None},
            )
        finally:
            db.dispose()
        return 1


def run(job_id: str, settings: Settings, *, placement_note: str | None = None) -> int:
    """Train the job (rank 0 of a multi-worker job, or its only worker) and record the outcome;
    `placement_note` says where the executor placed it (an event), when it has something to say."""
    from polytune.training import distributed
    from polytune.training.train import TrainingStopped
    from polytune.training.wandb_job import start_job_wandb

    keep_private()  # a Ray worker was not started by the server: it has not inherited its umask

    if distributed.rank() > 0:
        return _run_replica(job_id, settings)
    if (failed := _fail_without_accelerator(job_id, settings)) is not None:
        return failed
    db = Database(settings.resolved_database_url)
    blobs = BlobStore(settings.resolved_storage_url)
    prepared = prepare(db, blobs, settings, job_id)
    if prepared is None:
        db.dispose()
        return 0
    job, reporter = prepared.job, prepared.reporter
    stop_beating = threading.Event()

    def beat() -> None:
        while not stop_beating.wait(_HEARTBEAT_SECONDS):
            reporter.heartbeat()

    threading.Thread(target=beat, daemon=True).start()
    # SIGTERM (a server shutting down, a node draining): save where we are, then step aside.
    # Only a main thread can take signals (a Ray Train worker runs this in another thread; its
    # stops come through the store), and a reused process gets its handler back afterwards.
    previous_sigterm = None
    if threading.current_thread() is threading.main_thread():
        previous_sigterm = signal.signal(signal.SIGTERM, lambda *_: setattr(reporter, "preempted", True))
    wandb = None
    try:
        wandb = start_job_wandb(settings, db, job.spec, job_id, job.org_id, reporter)
        with tempfile.TemporaryDirectory(prefix=f"polytune-{job_id}-") as tmp:
            work = Path(tmp)
            try:
                # Every metrics event also goes to the job's W&B run when it has one.
                result = fit(
                    blobs, settings, prepared, work, wandb.reporter(reporter) if wandb else reporter, placement_note
                )
            except TrainingStopped:
                # A pause or preemption is only as good as the checkpoint it just handed over.
                reporter.wait_uploads(strict=True)
                raise
            finally:
                # Resume checkpoints upload while training goes on (store/uploads.py); the job
                # ends only once they are stored, before the work dir they are staged in goes.
                reporter.wait_uploads()
            key, results_id = publish(db, blobs, prepared.job, prepared.reporter, result, work)
            summary = {"job_id": job_id, "fine_tuned_model": prepared.name}
            wandb_files = wandb.end(reporter, summary=summary) if wandb else []
            wandb = None
            finish(db, prepared, result, key, [results_id, *wandb_files])
        # A succeeded job resumes no more: its last resume checkpoint would only take space.
        worker_store.drop_resume_checkpoint(db, blobs, job_id)
    except TrainingStopped as stop:
        log.info("job %s stopped for %s at step %s", job_id, stop.reason, stop.step)
        if wandb:  # paused or preempted: the next attempt's run joins this one in the job's folder
            wandb.end(reporter, attach=stop.reason == "cancel")
        # trained_steps: the step the resume checkpoint holds (progress is written only while
        # the job is running, so a pausing job's last step would otherwise be missing).
        if stop.reason == "pause":
            worker_store.finish(
                db,
                job_id,
                JobStatus.PAUSED,
                f"Fine-tuning job paused at step {stop.step}",
                from_=(JobStatus.PAUSING,),
                trained_steps=stop.step,
            )
        elif stop.reason == "preempt":
            worker_store.finish(
                db,
                job_id,
                JobStatus.QUEUED,
                f"The worker was stopped at step {stop.step}; the job is queued and will resume from there",
                worker=None,
                heartbeat_at=None,
                trained_steps=stop.step,
            )
    except Exception as e:
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        code = getattr(e, "code", None) or "training_error"
        message = getattr(e, "message", None) or f"{type(e).__name__}: {e}"
        from polytune.training.failures import is_out_of_memory, out_of_memory_message

        if is_out_of_memory(e):
            # Not retried (the job is failed here, not left to the scheduler's dead-worker resume).
            code, message = "out_of_memory", out_of_memory_message(e)
        elif isinstance(e, OSError) and e.errno == errno.ENOSPC:
            code = "storage_full"
            message = (
                f"Storage ran out of space while saving ({e.strerror}). The last complete "
                f"checkpoint is intact; free space and create the job again."
            )
        files = wandb.end(reporter, summary={"job_id": job_id}, exit_code=1) if wandb else []
        worker_store.finish(
            db,
            job_id,
            JobStatus.FAILED,
            f"Training failed: {message}",
            error={"code": code, "message": message, "param": getattr(e, "param", None)},
            **({"result_files": files} if files else {}),
        )
        return 1
    finally:
        stop_beating.set()
        reporter.uploads.close()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        db.dispose()
    return 0


def quiet_progress_bars() -> None:
    """Progress bars belong to a terminal; in a worker's log they are pages of noise."""
    import datasets
    from transformers.utils import logging as hf_logging

    datasets.disable_progress_bars()
    hf_logging.disable_progress_bar()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_progress_bars()
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print("usage: python -m polytune.training.runner JOB_ID", file=sys.stderr)
        return 2
    # Who this worker is, in its log: what an operator checks when a job starts slowly or a
    # stop does not reach it.
    pid = os.getpid()
    log.info(
        "worker pid=%d pgid=%d ppid=%d for job %s; training stack %s (%d objects frozen: preload.py); devices %s",
        pid,
        os.getpgid(pid),
        os.getppid(),
        args[0],
        "preloaded (warm start)" if "trl" in sys.modules else "not imported yet (cold start)",
        gc.get_freeze_count(),
        os.environ.get("POLYTUNE_JOB_ACCELERATORS") or "CPU",
    )
    from polytune.training.distributed import init_from_env

    init_from_env()  # a process of a torchrun launch (several accelerators on this node)
    return run(args[0], Settings())


if __name__ == "__main__":
    sys.exit(main())
