"""Jobs on a Ray cluster (POLYTUNE_EXECUTOR=ray; docs/scaling.md).

polytune keeps its own part small: it places a job (`ray_placement.py`: the job's resources
against the cluster's nodes) and follows the Ray task that runs it (`ray_tasks.py`). Ray does
the rest: starting processes on whichever node has room, placement groups for multi-worker
jobs (through Ray Train), and killing what a cancelled or lost job leaves behind.

The tasks belong to this server (Ray's owner): if the server goes, Ray ends them, and the next
scheduler pass (here, or on another server on the same database) brings the job back from its
last resume checkpoint, as it does for a local worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from polytune.domain.spec import IMAGE_METHODS, JobSpec, Resources
from polytune.store import jobs as job_store
from polytune.store.db import Database

from . import ray_placement
from .base import WorkerExit

log = logging.getLogger(__name__)

# What a job's worker needs of the server's environment, besides every POLYTUNE_* setting.
_PASSED_ENV_PREFIXES = ("POLYTUNE_", "HF_", "TRANSFORMERS_", "WANDB_")


@contextlib.contextmanager
def _signal_handlers_kept():
    """ray.init makes SIGTERM exit the process at once (and logs it from C++): in the server
    that would skip the graceful shutdown (workers checkpoint and requeue) that uvicorn runs."""
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in kept.items():
                if handler is not None:
                    signal.signal(sig, handler)


class RayExecutor:
    # One cluster for every server on the database: the scheduler counts its free accelerators
    # against all active jobs, not only this server's.
    shared = True
    # Seconds a read of the cluster's nodes is reused (the scheduler asks at every pass).
    NODES_TTL = 5.0

    def __init__(self, settings):
        try:
            import ray
        except ImportError:
            raise RuntimeError(
                "POLYTUNE_EXECUTOR=ray needs Ray on this machine and the cluster's: pip install 'polytune[ray]'"
            ) from None

        self.settings = settings
        self.db = Database(settings.resolved_database_url)
        self.started_here = not settings.ray_address
        runtime_env = {"env_vars": self._env()}
        common = dict(
            namespace=settings.ray_namespace,
            runtime_env=runtime_env,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
        with _signal_handlers_kept():
            if self.started_here:
                # A Ray of our own on this machine, ending with the server; no dashboard to run.
                # "local": never join a cluster found on the machine (RAY_ADDRESS, a running head).
                ray.init(address="local", include_dashboard=False, **common)
            else:
                ray.init(address=settings.ray_address, **common)
        from . import ray_tasks

        self._ray = ray
        self._run_job = ray.remote(max_retries=0)(ray_tasks.run_job)
        # The same task for a job on accelerators: max_calls can only be given here, not in options().
        self._run_job_fresh = ray.remote(max_retries=0, max_calls=1)(ray_tasks.run_job)
        # max_calls=1: the process ends with the job, and with it (Ray's ownership) every actor and
        # placement group Ray Train made for it, which would otherwise outlive the run.
        self._drive_job = ray.remote(max_retries=0, num_cpus=0, max_calls=1)(ray_tasks.drive_job)
        self._refs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._nodes_read: tuple[float, list[ray_placement.Node]] = (-self.NODES_TTL, [])
        # One pooled Ray worker imports the training stack now, so the first job starts warm.
        self._warm = ray.remote(num_cpus=0)(ray_tasks.warm_up).remote()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k.startswith(_PASSED_ENV_PREFIXES)}
        # Spelled out, so a relative data dir or an unset default means the same on every node.
        env["POLYTUNE_DATA_DIR"] = str(self.settings.resolved_data_dir)
        env["POLYTUNE_DATABASE_URL"] = self.settings.resolved_database_url
        env["POLYTUNE_STORAGE_URL"] = self.settings.resolved_storage_url
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    # -- placement -----------------------------------------------------------------------------
    def _nodes(self) -> list[ray_placement.Node]:
        now = time.monotonic()
        if now - self._nodes_read[0] > self.NODES_TTL:
            self._nodes_read = (now, ray_placement.nodes_from_ray(self._ray.nodes()))
        return self._nodes_read[1]

    def place(self, resources: Resources, method: str | None = None) -> ray_placement.Placement:
        """Where the job's workers go; InvalidRequest (400 naming the field) when never possible."""
        placement = ray_placement.plan(resources, self._nodes(), cpus_per_worker=self.settings.ray_cpus_per_worker)
        if method in IMAGE_METHODS and placement.distributed:
            # The image recipe is one process (diffusers); it takes one of the requested devices.
            note = (
                f"Image jobs train on one worker: this job takes one of its {placement.workers} requested accelerators."
            )
            placement = ray_placement.Placement(
                workers=1,
                per_worker=placement.per_worker,
                accelerator_type=placement.accelerator_type,
                device=placement.device,
                note=note,
            )
        return placement

    def check(self, spec: JobSpec) -> None:
        self.place(spec.resources, spec.method.type)

    @property
    def memory_capacity(self):
        """The most GPUs one node has, and one GPU's memory when POLYTUNE_ACCELERATOR_MEMORY_GB
        says it (Ray does not report it): what the memory planner checks jobs against."""
        from polytune.catalog.memory_fit import Capacity

        most = max((n.count("GPU") for n in self._nodes()), default=0)
        if not most:
            return None
        gb = self.settings.accelerator_memory_gb
        return Capacity(int(most), int(gb * 1024**3) if gb else None, self.settings.fsdp)

    def capacity(self) -> int:
        return ray_placement.capacity(self._nodes(), cpus_per_worker=self.settings.ray_cpus_per_worker)

    def demand(self, resources: Resources) -> int:
        return resources.n_accel * resources.n_node

    # What sets capacity(), for a refusal's message (a Tinker run counts against it too, though
    # its model lives in the API server: docs/tinker.md).
    capacity_setting = "the Ray cluster's accelerators, POLYTUNE_RAY_ADDRESS"

    # -- the executor interface ----------------------------------------------------------------
    def submit(self, job_id: str) -> dict[str, Any]:
        with self.db.session() as s:
            row = job_store.get_row(s, job_id)
            spec = JobSpec.model_validate(row.spec)
        placement = self.place(spec.resources, spec.method.type)
        name = f"polytune-{job_id}"
        if placement.distributed:
            ref = self._drive_job.options(name=name).remote(
                job_id,
                {
                    "workers": placement.workers,
                    "per_worker": placement.per_worker,
                    "strategy": placement.strategy,
                    "accelerator_type": placement.accelerator_type,
                    "device": placement.device,
                },
                placement.note,
            )
        else:
            task = self._run_job_fresh if placement.fresh_process else self._run_job
            ref = task.options(name=name, **placement.task_options()).remote(job_id, placement.note)
        with self._lock:
            self._refs[job_id] = ref
        # The tasks live as long as this server (their owner): its pid stands for them.
        return {
            "executor": "ray",
            "host": socket.gethostname(),
            "owner_pid": os.getpid(),
            "workers": placement.workers,
            "device": placement.device,
        }

    def stop(self, job_id: str, *, force: bool = False) -> None:
        with self._lock:
            ref = self._refs.get(job_id)
        if ref is None:
            return
        if force:
            # Ends the task's process and, through Ray's ownership, every actor and placement
            # group it started (a Ray Train run's workers).
            self._ray.cancel(ref, force=True, recursive=True)
            return
        # The worker may be on another node: ask through the store, which it reads every step.
        with self.db.session() as s:
            job_store.request_preemption(s, job_id)

    def _ready(self) -> set[str]:
        with self._lock:
            items = list(self._refs.items())
        if not items:
            return set()
        refs = [ref for _, ref in items]
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        ready_ids = {r.hex() for r in ready}
        return {job_id for job_id, ref in items if ref.hex() in ready_ids}

    def running(self) -> list[str]:
        done = self._ready()
        with self._lock:
            return [j for j in self._refs if j not in done]

    def reap(self) -> list[WorkerExit]:
        exits = []
        for job_id in self._ready():
            with self._lock:
                ref = self._refs.pop(job_id)
            try:
                exits.append(WorkerExit(job_id, int(self._ray.get(ref))))
            except Exception as e:  # the task never finished: killed, or its node was lost
                reason = f"The Ray task of the training worker ended without finishing ({type(e).__name__})."
                exits.append(WorkerExit(job_id, -9, reason=reason))
        return exits

    def shutdown(self) -> None:
        with self._lock:
            refs = list(self._refs.values())
            self._refs.clear()
        for ref in refs:
            self._ray.cancel(ref, force=True, recursive=True)
        self._ray.shutdown()
        self.db.dispose()
