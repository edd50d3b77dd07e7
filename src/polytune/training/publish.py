"""The runner's publish step: the fine-tuned weights to blob storage (and into the job's
repository when it has one, where its samples also go as they are made), and the results file."""

from __future__ import annotations

from pathlib import Path

from polytune.domain.job import Job
from polytune.domain.repos import DEFAULT_BRANCH
from polytune.domain.spec import JobSpec
from polytune.store import worker as worker_store
from polytune.store.blobs import BlobStore
from polytune.store.db import Database
from polytune.training.reporter import Reporter
from polytune.training.results import metrics_rows, results_csv


def publish(db: Database, blobs: BlobStore, job: Job, reporter: Reporter, result, work: Path) -> tuple[str, str]:
    """Store the weights (and commit them to the job's repository, when it has one) and the
    results file; returns (the weights' blob key, the results file's id)."""
    spec, job_id = job.spec, job.id
    reporter.event("Saving the fine-tuned model")
    key = f"models/{job_id}/final"
    last_checkpoint = f"models/{job_id}/{result.final_dir.name.replace('step-', 'ckpt-step-')}"
    if result.final_dir.parent == work / "checkpoints" and blobs.exists(last_checkpoint):
        key = last_checkpoint  # the last epoch's checkpoint is the final model: stored once, under its key
    else:
        blobs.put_dir(result.final_dir, key)
    if spec.output.repository:
        _publish_to_repository(db, blobs, spec, job_id, result.final_dir, work / "checkpoints", reporter)
    results_id = worker_store.add_result_file(
        db, blobs, org_id=job.org_id, filename=f"{job_id}-results.csv", data=results_csv(metrics_rows(db, job_id))
    )
    return key, results_id


def _publish_to_repository(
    db: Database,
    blobs: BlobStore,
    spec: JobSpec,
    job_id: str,
    final_dir: Path,
    checkpoints_dir: Path,
    reporter: Reporter,
) -> None:
    """Commit the weights (and the checkpoints under checkpoints/) into the job's repository."""
    from polytune.store.repos import publish_folder

    out = spec.output
    branch, path = out.branch or DEFAULT_BRANCH, out.repository_path(job_id)
    folders = {"": final_dir, **({"checkpoints": checkpoints_dir} if checkpoints_dir.is_dir() else {})}
    commit_id = publish_folder(
        db,
        blobs,
        repo_id=out.repository,
        branch=branch,
        path=path,
        folders=folders,
        message=f"Fine-tuned weights of {job_id}",
    )
    reporter.event(
        f"Published the weights to branch {branch} at {path}/ (commit {commit_id})",
        data={"branch": branch, "path": path, "commit_id": commit_id},
    )


def sample_publisher(db: Database, blobs: BlobStore, spec: JobSpec, job_id: str):
    """Samples go into the job's repository as they are made (beside where the weights will
    be), so the user sees the model change while it trains; None without a repository."""
    from polytune.store.repos import publish_folder

    out = spec.output
    if not out.repository:
        return None

    def publish(step: int, folder: Path) -> str:
        path = f"{out.repository_path(job_id)}/samples/step-{step}"
        publish_folder(
            db,
            blobs,
            repo_id=out.repository,
            branch=out.branch or DEFAULT_BRANCH,
            path=path,
            folders={"": folder},
            message=f"Samples of {job_id} at step {step}",
        )
        return path

    return publish
