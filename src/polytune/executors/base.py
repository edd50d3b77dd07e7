"""The executor interface: start a job's worker, stop it, tell whether it still lives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from polytune.domain.spec import Resources


@dataclass
class WorkerExit:
    job_id: str
    returncode: int
    # What the executor knows of why (a Ray node lost, a task killed); else said from the code.
    reason: str | None = None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        if self.returncode < 0:
            import signal

            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"The training worker was killed by {name}."
        return f"The training worker exited with code {self.returncode}."


class Executor(Protocol):
    def submit(self, job_id: str) -> dict[str, Any]:
        """Start the job's worker; returns where it runs (stored on the job)."""

    def stop(self, job_id: str, *, force: bool = False) -> None:
        """Ask the worker to stop (SIGTERM), or kill its whole group (force)."""

    def running(self) -> list[str]:
        """Jobs whose worker this executor started and which still run."""

    def reap(self) -> list[WorkerExit]:
        """Workers that exited since the last call."""

    def shutdown(self) -> None:
        """Kill every worker (server exit)."""

    def capacity(self) -> int:
        """Accelerators this executor can run at once (the scheduler shares them fairly)."""

    def demand(self, resources: Resources) -> int:
        """How many of those accelerators a job with these resources takes."""
