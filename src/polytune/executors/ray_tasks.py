"""What runs inside the Ray cluster for a job (the Ray executor submits these).

- `run_job`: a one-accelerator job, one Ray task that is the job's worker
  (`training/runner.py:run`, as the local executor's subprocess is).
- `drive_job`: a multi-accelerator job; a task holding no resources that runs Ray Train's
  `TorchTrainer` with one worker per accelerator (DDP over gloo on CPU, NCCL on GPUs; FSDP on
  GPUs when training/sharding.py chooses it), placed by Ray Train's placement group. Each worker runs the same runner: rank 0 reports, every rank
  trains (`training/distributed.py`).

Ray reuses a task's worker process for later tasks of the same server, so the training stack
each job imports is imported once per process (`warm_up` does it before the first job). Both
return the worker's exit code; a Ray failure (a node lost, a task killed) surfaces as an
exception the executor reads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polytune.config import Settings

log = logging.getLogger("polytune.worker")


@contextlib.contextmanager
def _job_log(job_id: str, settings: Settings):
    """The worker's log lines also go to <data dir>/logs/<job>.log when this node can write
    there (the server's own machine, or a shared data dir), as the local executor's do; Ray
    keeps its own worker logs besides."""
    from polytune.store.private_files import keep_private

    keep_private()  # the log below, and all the job writes, private to this user (private_files.py)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler = None
    with contextlib.suppress(OSError):
        folder = settings.resolved_data_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(folder / f"{job_id}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    try:
        yield
    finally:
        if handler is not None:
            root.removeHandler(handler)
            handler.close()


def warm_up() -> bool:
    """Import the training stack in this worker process (what the local executor's fork server
    preloads), so the job that lands here next starts at once."""
    import polytune.training.preload  # noqa: F401

    return True


def _expect_gpus() -> None:
    """A worker Ray gave GPUs expects CUDA: the runner fails the job at once when torch cannot
    use them (training/failures.py), as the local executor's workers do."""
    import ray

    if ids := ray.get_gpu_ids():
        os.environ["POLYTUNE_JOB_ACCELERATORS"] = ",".join(str(i) for i in ids)


def run_job(job_id: str, placement_note: str | None = None) -> int:
    from polytune.config import Settings
    from polytune.training.runner import quiet_progress_bars, run

    # This Ray task's one Settings: its log folder and the job's run read the same.
    settings = Settings()
    with _job_log(job_id, settings):
        quiet_progress_bars()
        import ray

        log.info(
            "ray worker pid=%d on node %s for job %s", os.getpid(), ray.get_runtime_context().get_node_id(), job_id
        )
        _expect_gpus()
        return run(job_id, settings, placement_note=placement_note)


def train_worker(config: dict[str, Any]) -> None:
    """One Ray Train worker of a multi-worker job."""
    from polytune.config import Settings
    from polytune.training import distributed
    from polytune.training.runner import quiet_progress_bars, run

    job_id = config["job_id"]
    quiet_progress_bars()
    log.info("ray train worker rank %d of %d for job %s", distributed.rank(), distributed.world_size(), job_id)
    _expect_gpus()
    code = run(job_id, Settings(), placement_note=config.get("placement_note"))
    if code != 0:
        # Rank 0 recorded the failure; raising ends the whole worker group (the other ranks
        # would otherwise wait in their next collective for a rank that has left).
        raise RuntimeError(f"job {job_id} failed on rank {distributed.rank()} (see the job's events)")


def drive_job(job_id: str, placement: dict[str, Any], placement_note: str | None = None) -> int:
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from polytune.config import Settings

    with _job_log(job_id, Settings()):
        gpu = placement["device"] == "GPU"
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"job_id": job_id, "placement_note": placement_note},
            torch_config=TorchConfig(backend="nccl" if gpu else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=placement["workers"],
                use_gpu=gpu,
                resources_per_worker=placement["per_worker"],
                placement_strategy=placement["strategy"],
                accelerator_type=placement["accelerator_type"],
            ),
            # No retries inside Ray Train: a lost worker is the scheduler's to recover, from the
            # job's last resume checkpoint, as with any worker that died.
            run_config=RunConfig(
                name=f"polytune-{job_id}",
                failure_config=FailureConfig(max_failures=0),
                storage_path=str(Path(tempfile.gettempdir()) / "polytune-ray-train"),
            ),
        )
        log.info("job %s: Ray Train with %d workers", job_id, placement["workers"])
        try:
            trainer.fit()
        except Exception:
            log.exception("job %s: the Ray Train run failed", job_id)
            return 1
        return 0
