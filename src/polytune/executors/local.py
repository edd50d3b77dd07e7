"""Worker subprocesses on this machine, one process group per job.

A group per job means a crash or a cancel never touches the server and always frees every
process the worker started (tokenizer threads, dataloader workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from . import warm
from .base import WorkerExit


class LocalExecutor:
    def __init__(self, settings):
        self.settings = settings
        self._procs: dict[str, subprocess.Popen | warm.ForkedWorker] = {}
        self._lock = threading.Lock()
        self.log_dir = settings.resolved_data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._warm = warm.context() if settings.warm_workers else None
        if self._warm is not None:
            # Import the training stack now, beside the server's own start, not when a job comes.
            threading.Thread(target=warm.warm_up, name="polytune-warm-up", daemon=True).start()

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The worker reaches the same database and blobs, spelled out so a relative data dir
        # or an unset default means the same thing in the child.
        env["POLYTUNE_DATA_DIR"] = str(self.settings.resolved_data_dir)
        env["POLYTUNE_DATABASE_URL"] = self.settings.resolved_database_url
        env["POLYTUNE_STORAGE_URL"] = self.settings.resolved_storage_url
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        return env

    def submit(self, job_id: str) -> dict[str, Any]:
        if self._warm is not None:
            proc = warm.ForkedWorker(self._warm, job_id, self._env(), self.log_dir / f"{job_id}.log")
            with self._lock:
                self._procs[job_id] = proc
            return {"executor": "local", "host": socket.gethostname(), "pid": proc.pid, "start": "warm"}
        log = open(self.log_dir / f"{job_id}.log", "ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "polytune.training.runner", job_id],
                env=self._env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            log.close()
        with self._lock:
            self._procs[job_id] = proc
        return {"executor": "local", "host": socket.gethostname(), "pid": proc.pid, "start": "cold"}

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
        return exits

    def pid(self, job_id: str) -> int | None:
        with self._lock:
            proc = self._procs.get(job_id)
            return proc.pid if proc else None

    def capacity(self) -> int:
        return self.settings.worker_slots

    def demand(self, resources) -> int:
        # Every job trains in one process on this machine's devices whatever it asked for
        # (device.resources_note tells the user), so each takes one slot.
        return 1

    def shutdown(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            with contextlib.suppress(Exception):
                p.wait(timeout=5)
