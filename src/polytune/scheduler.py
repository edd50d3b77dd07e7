"""The scheduler: validates new jobs, starts queued ones in free slots, fairly across
organizations, and brings back the jobs whose worker died.

One pass runs every `scheduler_interval` seconds in a thread of the API server. Every change
it makes goes through the lifecycle in `domain/job.py`, so a pass that loses a race with a
cancel (or with another server) simply changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import sqlalchemy as sa

from polytune.domain.job import IllegalTransition, JobStatus
from polytune.executors import Executor
from polytune.services.jobs import JobService
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.db import Database, now

log = logging.getLogger(__name__)
_ACTIVE = (JobStatus.RUNNING.value, JobStatus.PAUSING.value)
# How far down the queue a pass looks for a job whose organization is below its limit.
_CLAIM_WINDOW = 200


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Scheduler:
    def __init__(self, db: Database, jobs: JobService, executor: Executor, *, slots: int,
                 interval: float = 0.5, cancel_grace: float = 10.0, heartbeat_timeout: float = 120.0,
                 max_retries: int = 3, max_jobs_per_org: int = 0, shutdown_grace: float = 60.0):
        self.db, self.jobs, self.executor = db, jobs, executor
        self.slots, self.interval = slots, interval
        self.cancel_grace, self.heartbeat_timeout = cancel_grace, heartbeat_timeout
        self.max_retries, self.max_jobs_per_org = max_retries, max_jobs_per_org
        self.shutdown_grace = shutdown_grace
        self.host = socket.gethostname()
        self._stopping_since: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ------------------------------------------------------------------------------
    def tick(self) -> None:
        self.jobs.validate_pending()
        self._reap()
        self._stop_cancelled()
        self._recover_lost()
        self._dispatch()

    def _recover(self, job_id: str, reason: str) -> None:
        """A job whose worker is gone: paused if it was pausing; otherwise queued again to resume
        from its last checkpoint, until it has used up its retries; then failed."""
        with self.db.session() as s:
            row = job_store.get_row(s, job_id, lock=True)
            if row is None or row.status not in _ACTIVE:
                return  # the worker moved it on before it exited
            where = f"step {row.resume_step}" if row.resume_step else "the start (no checkpoint yet)"
            try:
                if row.status == JobStatus.PAUSING.value:
                    job_store.transition(s, row, JobStatus.PAUSED, f"{reason} The job is paused; it "
                                         f"will resume from {where}.", worker=None)
                elif (row.attempts or 0) <= self.max_retries:
                    job_store.transition(s, row, JobStatus.QUEUED, f"{reason} Retry {row.attempts} of "
                                         f"{self.max_retries}: the job will resume from {where}.",
                                         level="warn", worker=None, heartbeat_at=None)
                else:
                    message = f"{reason} The job failed after {self.max_retries} retries."
                    job_store.transition(s, row, JobStatus.FAILED, message, level="error",
                                         error={"code": "worker_died", "message": message, "param": None})
            except (IllegalTransition, job_store.StaleTransition):
                return

    def _reap(self) -> None:
        for ex in self.executor.reap():
            self._stopping_since.pop(ex.job_id, None)
            self._recover(ex.job_id, ex.describe())

    def _stop_cancelled(self) -> None:
        live = self.executor.running()
        if not live:
            return
        with self.db.session() as s:
            done = set(s.scalars(sa.select(t.Job.id).where(
                t.Job.id.in_(live), t.Job.status.in_([st.value for st in JobStatus if st.terminal]))))
        for job_id in done:
            first = self._stopping_since.setdefault(job_id, time.monotonic())
            # The worker stops by itself at its next step; kill the group if it does not.
            if time.monotonic() - first > self.cancel_grace:
                self.executor.stop(job_id, force=True)

    def _recover_lost(self) -> None:
        """Active jobs with no live worker: after a server restart, or a worker on a lost host."""
        mine = set(self.executor.running())
        with self.db.session() as s:
            rows = list(s.scalars(sa.select(t.Job).where(t.Job.status.in_(_ACTIVE))))
        for row in rows:
            if row.id in mine:
                continue
            worker = row.worker or {}
            # The process whose end means the worker's end: a local worker itself, or the
            # server that owns a job's Ray task (Ray ends a task whose owner is gone).
            pid = worker.get("pid") or worker.get("owner_pid")
            here = worker.get("host") == self.host and pid
            if here and not _pid_alive(int(pid)):
                self._recover(row.id, "The training worker is gone (the server restarted or the "
                                      "process was killed).")
            elif row.heartbeat_at and time.time() - row.heartbeat_at > self.heartbeat_timeout:
                self._recover(row.id, f"No heartbeat from the training worker for "
                                      f"{int(time.time() - row.heartbeat_at)} s.")

    def _claim(self) -> str | None:
        """Take one queued job: from the organization with the fewest active jobs (so one
        organization's hundred jobs don't starve another's one), oldest first within it, and
        never beyond the per-organization limit."""
        with self.db.session() as s:
            active = dict(s.execute(sa.select(t.Job.org_id, sa.func.count()).where(
                t.Job.status.in_(_ACTIVE)).group_by(t.Job.org_id)).all())
            stmt = (sa.select(t.Job).where(t.Job.status == JobStatus.QUEUED.value)
                    .order_by(t.Job.seq).limit(_CLAIM_WINDOW))
            if not self.db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = [r for r in s.scalars(stmt)
                    if not self.max_jobs_per_org or active.get(r.org_id, 0) < self.max_jobs_per_org]
            if not rows:
                return None
            row = min(rows, key=lambda r: (active.get(r.org_id, 0), r.seq))
            try:
                job_store.transition(s, row, JobStatus.RUNNING, "Fine-tuning job started",
                                     started_at=row.started_at or now(), heartbeat_at=time.time(),
                                     attempts=(row.attempts or 0) + 1)
            except (IllegalTransition, job_store.StaleTransition):
                return None
            return row.id

    def _dispatch(self) -> None:
        while not self._stop.is_set() and len(self.executor.running()) < self.slots:
            job_id = self._claim()
            if job_id is None:
                return
            try:
                worker = self.executor.submit(job_id)
            except Exception as e:  # a worker that can't start fails its job, not the server
                log.exception("could not start worker for %s", job_id)
                with self.db.session() as s:
                    row = job_store.get_row(s, job_id, lock=True)
                    if row is not None and row.status == JobStatus.RUNNING.value:
                        msg = f"Could not start the training worker: {e}"
                        job_store.transition(s, row, JobStatus.FAILED, msg, level="error",
                                             error={"code": "worker_start_failed", "message": msg, "param": None})
                continue
            with self.db.session() as s:
                s.execute(sa.update(t.Job).where(t.Job.id == job_id).values(worker=worker))

    # -- the thread ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="polytune-scheduler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("scheduler pass failed; retrying")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop taking jobs; ask running workers to checkpoint and step aside (they queue their
        job again, and the next start resumes it); kill what is left after the grace period."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        live = self.executor.running()
        for job_id in live:
            self.executor.stop(job_id)
        deadline = time.monotonic() + self.shutdown_grace
        while self.executor.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        self.executor.shutdown()
