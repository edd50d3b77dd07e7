"""Worker subprocesses on this machine, one process group per job.

A group per job means a crash or a cancel never touches the server and always frees every
process the worker started (tokenizer threads, dataloader workers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from . import accelerators as accel
from . import warm
from .base import WorkerExit

log = logging.getLogger("polytune.executor")


def worker_command(job_id: str, n_devices: int) -> list[str]:
    """One process, or one per device (torchrun on this node) for a job holding several: the
    runner joins the process group torchrun describes and trains with DDP or FSDP as the Ray
    path chooses (training/sharding.py)."""
    runner = ["-m", "polytune.training.runner", job_id]
    if n_devices <= 1:
        return [sys.executable, *runner]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n_devices}", *runner]


class LocalExecutor:
    def __init__(self, settings):
        self.settings = settings
        self._procs: dict[str, subprocess.Popen | warm.ForkedWorker] = {}
        self._lock = threading.Lock()
        self.log_dir = settings.resolved_data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._warm = warm.context() if settings.warm_workers else None
        self.accelerators = accel.detect(settings.accelerators, settings.accelerator_memory_gb)
        self._pool = accel.Pool(self.accelerators.ids)
        self._db = None
        log.info(
            "local executor: %d accelerator(s) %s (from %s)%s",
            len(self.accelerators.ids),
            ",".join(self.accelerators.ids),
            self.accelerators.source,
            "" if self.accelerators else f"; {settings.worker_slots} CPU worker slot(s)",
        )
        # torch's CUDA build and the devices it sees, in the server's log (imports torch: not inline).
        threading.Thread(
            target=lambda: log.info("training stack: %s", accel.describe_torch()),
            name="polytune-torch-info",
            daemon=True,
        ).start()
        if self._warm is not None:
            # Import the training stack now, beside the server's own start, not when a job comes.
            threading.Thread(target=warm.warm_up, name="polytune-warm-up", daemon=True).start()

    @property
    def memory_capacity(self):
        """What the memory planner checks jobs against (None on CPU: nothing is refused)."""
        from polytune.catalog.memory_fit import Capacity

        if not self.accelerators:
            return None
        return Capacity(len(self.accelerators.ids), self.accelerators.memory, self.settings.fsdp)

    def check(self, spec) -> None:
        accel.check_count(spec.resources.n_accel, spec.resources.n_node, self.accelerators)

    def _n_accel(self, job_id: str) -> int:
        from polytune.domain.spec import IMAGE_METHODS, Resources, method_type
        from polytune.store import jobs as job_store
        from polytune.store.db import Database

        if self._db is None:
            self._db = Database(self.settings.resolved_database_url)
        with self._db.session() as s:
            row = job_store.get_row(s, job_id)
            spec = (row.spec if row is not None else None) or {}
        if method_type(spec) in IMAGE_METHODS:
            return 1  # the image recipe is one process: it takes one of the requested devices
        return self.demand(Resources.model_validate(spec.get("resources") or {}))

    def _env(self, devices: tuple[str, ...] = ()) -> dict[str, str]:
        env = dict(os.environ)
        if self.accelerators:
            # The job's own devices only; POLYTUNE_JOB_ACCELERATORS tells the worker it was given
            # accelerators, so it fails at once when CUDA cannot use them (runner.py).
            env["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
            env["POLYTUNE_JOB_ACCELERATORS"] = ",".join(devices)
        # The worker reaches the same database and blobs, spelled out so a relative data dir
        # or an unset default means the same thing in the child.
        env["POLYTUNE_DATA_DIR"] = str(self.settings.resolved_data_dir)
        env["POLYTUNE_DATABASE_URL"] = self.settings.resolved_database_url
        env["POLYTUNE_STORAGE_URL"] = self.settings.resolved_storage_url
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def submit(self, job_id: str) -> dict[str, Any]:
        # The scheduler counts free devices from running() (live workers); a worker that exited
        # but is not reaped yet must not keep its devices from the job starting in its place.
        with self._lock:
            for done in [j for j, p in self._procs.items() if p.poll() is not None]:
                self._pool.release(done)
        devices = self._pool.take(job_id, self._n_accel(job_id)) if self.accelerators else ()
        where = {"executor": "local", "host": socket.gethostname(), **({"devices": list(devices)} if devices else {})}
        env = self._env(devices)
        try:
            # A multi-process job starts cold: torchrun is its own launcher.
            if self._warm is not None and len(devices) <= 1:
                proc = warm.ForkedWorker(self._warm, job_id, env, self.log_dir / f"{job_id}.log")
                start = "warm"
            else:
                with open(self.log_dir / f"{job_id}.log", "ab") as out:
                    proc = subprocess.Popen(
                        worker_command(job_id, len(devices)),
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                start = "cold"
        except BaseException:
            self._pool.release(job_id)
            raise
        with self._lock:
            self._procs[job_id] = proc
        return {**where, "pid": proc.pid, "start": start}

    def stop(self, job_id: str, *, force: bool = False) -> None:
        with self._lock:
            proc = self._procs.get(job_id)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL if force else signal.SIGTERM)

    def running(self) -> list[str]:
        with self._lock:
            return [j for j, p in self._procs.items() if p.poll() is None]

    def reap(self) -> list[WorkerExit]:
        exits = []
        with self._lock:
            for job_id, proc in list(self._procs.items()):
                code = proc.poll()
                if code is not None:
                    # The worker is gone; make sure nothing it started lingers in its group.
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    exits.append(WorkerExit(job_id, code))
                    del self._procs[job_id]
                    self._pool.release(job_id)
        return exits

    def pid(self, job_id: str) -> int | None:
        with self._lock:
            proc = self._procs.get(job_id)
            return proc.pid if proc else None

    def capacity(self) -> int:
        # Accelerators when the machine has them; else CPU worker slots.
        return len(self.accelerators.ids) or self.settings.worker_slots

    @property
    def capacity_setting(self) -> str:
        """What sets capacity(), for a refusal's message."""
        return "POLYTUNE_ACCELERATORS" if self.accelerators else "worker_slots, POLYTUNE_WORKER_SLOTS"

    def hold(self, job_id: str, n: int) -> tuple[str, ...]:
        """Devices for a job that runs in the server itself (a Tinker run), kept from the workers
        until unhold; none on CPU."""
        return self._pool.take(job_id, n) if self.accelerators else ()

    def unhold(self, job_id: str) -> None:
        self._pool.release(job_id)

    def demand(self, resources) -> int:
        # With accelerators a job takes the devices it asked for; on CPU every job trains in one
        # process whatever it asked (device.resources_note tells the user), so each takes a slot.
        return max(1, resources.n_accel) if self.accelerators else 1

    def shutdown(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
        if self._db is not None:
            self._db.dispose()
