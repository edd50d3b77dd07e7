"""Warm local workers: jobs forked from a process that has already imported the training stack.

This is the standard library's `multiprocessing` fork server, not a pool of our own: the
server process starts it once (at startup, in the background) with `polytune.training.preload`
imported, and each job's worker is a fresh fork of it. A fork per job keeps what the cold path
gives: a new process with its own memory, its own process group, its own log file, and an exit
code the executor reaps, so cancel, crash recovery and pid checks work unchanged.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing import forkserver
from pathlib import Path

PRELOAD = ["polytune.training.preload"]


def context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    # Not '__main__' (the default): the server's entry script has nothing a worker needs.
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def warm_up() -> None:
    """Start the fork server now; it imports PRELOAD before it serves its first fork."""
    context()
    forkserver.ensure_running()


def run_worker(job_id: str, env: dict[str, str], log_path: str) -> None:
    """The forked child's entry: become what `python -m polytune.training.runner` would be."""
    os.setsid()  # its own process group, so a stop or a crash takes everything it started
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    from polytune.training.runner import main

    code = main([job_id])
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class ForkedWorker:
    """A forked worker with the slice of subprocess.Popen's interface the executor uses."""

    def __init__(self, ctx, job_id: str, env: dict[str, str], log_path: Path):
        self._proc = ctx.Process(
            target=run_worker, args=(job_id, env, str(log_path)), name=f"polytune-worker-{job_id}", daemon=False
        )
        self._proc.start()
        self.pid = self._proc.pid

    def poll(self) -> int | None:
        return self._proc.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self._proc.join(timeout)
        return self._proc.exitcode
