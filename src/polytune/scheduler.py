"""The scheduler: validates new jobs, starts queued ones in the executor's free accelerators,
fairly across organizations (the policy is `fair_share.choose`), and brings back the jobs whose
worker died.

One pass runs every `scheduler_interval` seconds in a thread of the API server. Every change
it makes goes through the lifecycle in `domain/job.py`, so a pass that loses a race with a
cancel (or with another server) simply changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

import sqlalchemy as sa

from polytune import fair_share
from polytune.domain.errors import QuotaExceeded
from polytune.domain.job import IllegalTransition, JobStatus
from polytune.domain.spec import Resources, method_type
from polytune.executors import Executor
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.db import Database, now

log = logging.getLogger(__name__)
_ACTIVE = (JobStatus.RUNNING.value, JobStatus.PAUSING.value)


class Validator(Protocol):
    """What the scheduler asks of the job service (services/jobs.py's JobService): a protocol,
    so the scheduler, below services, never imports them; the app hands the service in."""

    def validate_pending(self) -> int: ...


class EvalDispatcher(Protocol):
    """What the scheduler asks of the eval runner (services/eval_runner.py): hand queued eval
    runs to its threads, fairly by organization."""

    def dispatch(self) -> int: ...


def _worker_died(s, row, message: str) -> None:
    """Fail a job whose worker is gone and will not be retried."""
    error = {"code": "worker_died", "message": message, "param": None}
    job_store.transition(s, row, JobStatus.FAILED, message, level="error", error=error)


def holds_accelerators(worker: dict[str, Any] | None) -> bool:
    """Whether an active job holds its accelerators: all do but a Tinker run released while idle
    (services/primitive_runs.py: its state saved, its model freed until its next call)."""
    return not (worker or {}).get("released")


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is alive (a worker, or a server that claimed work)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Scheduler:
    def __init__(
        self,
        db: Database,
        jobs: Validator,
        executor: Executor,
        *,
        slots: int,
        interval: float = 0.5,
        cancel_grace: float = 10.0,
        heartbeat_timeout: float = 120.0,
        max_retries: int = 3,
        max_jobs_per_org: int = 0,
        shutdown_grace: float = 60.0,
        evals: EvalDispatcher | None = None,
    ):
        self.db, self.jobs, self.executor, self.evals = db, jobs, executor, evals
        self.slots, self.interval = slots, interval
        self.cancel_grace, self.heartbeat_timeout = cancel_grace, heartbeat_timeout
        self.max_retries, self.max_jobs_per_org = max_retries, max_jobs_per_org
        self.shutdown_grace = shutdown_grace
        self.host = socket.gethostname()
        self._stopping_since: dict[str, float] = {}
        # A pass's claims and a Tinker run's admission (place_now) each count the free accelerators
        # and then take some: one at a time. _held: accelerators of the jobs placed that way here.
        self._placing = threading.RLock()
        self._held: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one pass ------------------------------------------------------------------------------
    def tick(self) -> None:
        self.jobs.validate_pending()
        if self.evals is not None:
            self.evals.dispatch()
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
                if method_type(row.spec or {}) == "primitives":
                    # A Tinker run's model lived in the server that is gone: there is nothing to
                    # queue (its client drives it call by call); its saved checkpoints remain.
                    _worker_died(s, row, f"{reason} The training run ended with it; its saved checkpoints remain.")
                elif row.status == JobStatus.PAUSING.value:
                    job_store.transition(
                        s,
                        row,
                        JobStatus.PAUSED,
                        f"{reason} The job is paused; it will resume from {where}.",
                        worker=None,
                    )
                elif (row.attempts or 0) <= self.max_retries:
                    job_store.transition(
                        s,
                        row,
                        JobStatus.QUEUED,
                        f"{reason} Retry {row.attempts} of {self.max_retries}: the job will resume from {where}.",
                        level="warn",
                        worker=None,
                        heartbeat_at=None,
                    )
                else:
                    _worker_died(s, row, f"{reason} The job failed after {self.max_retries} retries.")
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
            done = set(
                s.scalars(
                    sa.select(t.Job.id).where(
                        t.Job.id.in_(live), t.Job.status.in_([st.value for st in JobStatus if st.terminal])
                    )
                )
            )
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
            if here and not pid_alive(int(pid)):
                self._recover(row.id, "The training worker is gone (the server restarted or the process was killed).")
            elif row.heartbeat_at and time.time() - row.heartbeat_at > self.heartbeat_timeout:
                self._recover(
                    row.id, f"No heartbeat from the training worker for {int(time.time() - row.heartbeat_at)} s."
                )

    # -- starting queued jobs -------------------------------------------------------------------
    # Executors without capacity()/demand() (the tests' stand-ins) count as `slots` workers that
    # take one accelerator each, which is what the local executor says too.
    def _capacity(self) -> int:
        capacity = getattr(self.executor, "capacity", None)
        return capacity() if capacity else self.slots

    def _demand(self, spec: dict | None) -> int:
        demand = getattr(self.executor, "demand", None)
        if not demand:
            return 1
        return demand(Resources.model_validate((spec or {}).get("resources") or {}))

    def _free(self) -> int:
        """Accelerators not held by the jobs this executor runs nor by the Tinker runs this server
        holds (place_now); on a cluster every server shares (Ray), not held by any active job in
        the database, whichever server started it."""
        with self.db.session() as s:
            if getattr(self.executor, "shared", False):
                rows = s.execute(sa.select(t.Job.spec, t.Job.worker).where(t.Job.status.in_(_ACTIVE)))
                return self._capacity() - sum(self._demand(spec) for spec, worker in rows if holds_accelerators(worker))
            live = self.executor.running()
            specs = list(s.scalars(sa.select(t.Job.spec).where(t.Job.id.in_(live)))) if live else []
        return self._capacity() - sum(self._demand(spec) for spec in specs) - sum(self._held.values())

    # -- jobs that start at once or not at all (Tinker runs) ---------------------------------------
    @contextlib.contextmanager
    def place_now(self, job_id: str, org_id: str, spec: dict) -> Iterator[tuple[str, ...]]:
        """Accelerators for a job that cannot wait in the queue (a Tinker run: its client waits on
        its call), now, or a QuotaExceeded naming the setting: at `max_jobs_per_org`, with none
        free, or when queued jobs come first in fair order (fair_share.starts_now). Yields the
        devices it holds here (none on CPU or a cluster). The caller marks the job running inside
        the block, which the scheduler's passes wait for. `release` gives them back."""
        with self._placing:
            demand = self._demand(spec)
            self._check_now(org_id, demand)
            hold = getattr(self.executor, "hold", None)
            devices = tuple(hold(job_id, demand)) if hold else ()
            self._held[job_id] = demand
            try:
                yield devices
            except BaseException:
                self.release(job_id)
                raise

    def release(self, job_id: str) -> None:
        """A job placed with place_now no longer holds its accelerators (ended, or released idle)."""
        with self._placing:
            self._held.pop(job_id, None)
            unhold = getattr(self.executor, "unhold", None)
            if unhold:
                unhold(job_id)

    def _check_now(self, org_id: str, demand: int) -> None:
        capacity, free = self._capacity(), self._free()
        with self.db.session() as s:
            (usage, active), queued = self._usage(s), self._queued(s)
        wait = "A Tinker run starts at once or not at all: try again when a job ends (or cancel one)."
        if self.max_jobs_per_org and active.get(org_id, 0) >= self.max_jobs_per_org:
            raise QuotaExceeded(
                f"Running-jobs limit reached: this organization runs {active[org_id]} jobs and may run at most "
                f"{self.max_jobs_per_org} at once (setting max_jobs_per_org, POLYTUNE_MAX_JOBS_PER_ORG). {wait}",
                code="running_jobs_limit",
            )
        setting = getattr(self.executor, "capacity_setting", "worker_slots, POLYTUNE_WORKER_SLOTS")
        if demand > free:
            used = f"{capacity - max(free, 0)} of {capacity} accelerators are in use ({setting})"
            raise QuotaExceeded(f"No free accelerator: {used}; this needs {demand}. {wait}", code="no_free_accelerator")
        me = fair_share.Candidate(f"now:{org_id}", org_id, sys.maxsize, demand, time.time())
        state = dict(capacity=capacity, usage=usage, active=active, max_jobs_per_org=self.max_jobs_per_org)
        if not fair_share.starts_now(me, queued, free=free, now=time.time(), **state):
            raise QuotaExceeded(
                f"The {free} free accelerator(s) of {capacity} ({setting}) go to queued jobs that come first in fair "
                f"order (organizations using fewer accelerators, then older jobs: docs/scheduling.md). {wait}",
                code="fair_share_wait",
            )

    def _claim(self, free: int | None = None) -> str | None:
        """Take the queued job `fair_share.choose` picks for `free` accelerators (all of them when
        not given): organizations using the fewest accelerators first, oldest first within one,
        never beyond the per-organization limit. Usage counts every active job in the database,
        so servers sharing it share one notion of fairness."""
        capacity = self._capacity()
        free = capacity if free is None else free
        with self.db.session() as s:
            usage, active = self._usage(s)
            candidates = {c.id: c for c in self._queued(s)}
            while True:
                pick = fair_share.choose(
                    candidates.values(),
                    free=free,
                    capacity=capacity,
                    usage=usage,
                    active=active,
                    now=time.time(),
                    max_jobs_per_org=self.max_jobs_per_org,
                )
                if pick is None:
                    return None
                lock = sa.select(t.Job).where(t.Job.id == pick.id, t.Job.status == JobStatus.QUEUED.value)
                if not self.db.is_sqlite:
                    # Another server may be starting it: pass over it rather than wait for it.
                    lock = lock.with_for_update(skip_locked=True)
                row = s.scalar(lock)
                if row is not None:
                    break
                del candidates[pick.id]
            try:
                job_store.transition(
                    s,
                    row,
                    JobStatus.RUNNING,
                    "Fine-tuning job started",
                    started_at=row.started_at or now(),
                    heartbeat_at=time.time(),
                    attempts=(row.attempts or 0) + 1,
                )
            except (IllegalTransition, job_store.StaleTransition):
                return None
            return row.id

    def _usage(self, s) -> tuple[dict[str, int], dict[str, int]]:
        """Accelerators and active jobs per organization, over every active job in the database
        that holds its accelerators (not a Tinker run released while idle)."""
        usage: dict[str, int] = {}
        active: dict[str, int] = {}
        rows = s.execute(sa.select(t.Job.org_id, t.Job.spec, t.Job.worker).where(t.Job.status.in_(_ACTIVE)))
        for org, spec, worker in rows:
            if holds_accelerators(worker):
                usage[org] = usage.get(org, 0) + self._demand(spec)
                active[org] = active.get(org, 0) + 1
        return usage, active

    def _queued(self, s) -> list[fair_share.Candidate]:
        """Each organization's oldest queued jobs: a late job of a small organization is seen
        however long the big ones' queue is."""
        rank = sa.func.row_number().over(partition_by=t.Job.org_id, order_by=t.Job.seq).label("rank")
        # (The specs are read for those rows only: reading them for the whole queue costs more.)
        queued = sa.select(t.Job.seq, rank).where(t.Job.status == JobStatus.QUEUED.value).subquery()
        rows = s.execute(
            sa.select(t.Job.id, t.Job.org_id, t.Job.seq, t.Job.spec, t.Job.created_at)
            .join(queued, queued.c.seq == t.Job.seq)
            .where(queued.c.rank <= fair_share.PER_ORG_WINDOW)
        )
        return [fair_share.Candidate(r.id, r.org_id, r.seq, self._demand(r.spec), float(r.created_at)) for r in rows]

    def _dispatch(self) -> None:
        """Start jobs while one fits in the free accelerators."""
        while not self._stop.is_set():
            with self._placing:  # a Tinker run's admission counts the same accelerators
                if not self._dispatch_one():
                    return

    def _dispatch_one(self) -> bool:
        """Claim one job that fits and start its worker; False when none does."""
        free = self._free()
        job_id = self._claim(free) if free > 0 else None
        if job_id is None:
            return False
        try:
            worker = self.executor.submit(job_id)
        except Exception as e:  # a worker that can't start fails its job, not the server
            log.exception("could not start worker for %s", job_id)
            with self.db.session() as s:
                row = job_store.get_row(s, job_id, lock=True)
                if row is not None and row.status == JobStatus.RUNNING.value:
                    msg = f"Could not start the training worker: {e}"
                    job_store.transition(
                        s,
                        row,
                        JobStatus.FAILED,
                        msg,
                        level="error",
                        error={"code": "worker_start_failed", "message": msg, "param": None},
                    )
            return True
        with self.db.session() as s:
            s.execute(sa.update(t.Job).where(t.Job.id == job_id).values(worker=worker))
        return True

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
