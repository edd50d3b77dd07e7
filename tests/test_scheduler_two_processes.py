"""Two scheduler processes on one PostgreSQL database, 200 queued jobs, 4 slots between them:
every job is started exactly once and all of them finish.

The schedulers are the real ones, each in its own process with its own connection pool, racing
for the same rows. Their workers are stand-ins that finish a job as the runner does (one
store transition to succeeded) after a short, random time; real training of 200 jobs is
covered in spirit by tests/e2e/test_lifecycle.py's two-server test on a dozen jobs.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time

import pytest
import sqlalchemy as sa

from polytune.domain.job import JobStatus
from polytune.executors.base import WorkerExit
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.db import Database
from tests.conftest import PG_URL, make_database_url
from tests.rows import add_job, add_org

pytestmark = pytest.mark.live  # two scheduler processes

N_JOBS, SLOTS_EACH = 200, 2


class _QuickWorkers:
    """Executor whose worker 'trains' for 5-20 ms, then records success the way the runner does."""

    def __init__(self, db: Database):
        self.db, self.lock, self.live, self.exits = db, threading.Lock(), {}, []

    def submit(self, job_id: str) -> dict:
        with self.lock:
            self.live[job_id] = time.monotonic() + random.uniform(0.005, 0.02)
        return {"executor": "test", "pid": 0}

    def _finish_due(self) -> None:
        with self.lock:
            due = [j for j, at in self.live.items() if at <= time.monotonic()]
            for job_id in due:
                del self.live[job_id]
        for job_id in due:
            with self.db.session() as s:
                row = job_store.get_row(s, job_id, lock=True)
                job_store.transition(s, row, JobStatus.SUCCEEDED, "done")
            self.exits.append(WorkerExit(job_id, 0))

    def running(self) -> list[str]:
        self._finish_due()
        with self.lock:
            return list(self.live)

    def reap(self) -> list[WorkerExit]:
        out, self.exits = self.exits, []
        return out

    def stop(self, job_id: str, *, force: bool = False) -> None:
        pass

    def shutdown(self) -> None:
        pass


def _serve(url: str, data_dir: str) -> None:
    """One server's scheduler, wired as the app wires it; runs until the test terminates it."""
    from polytune.app import build_services
    from polytune.config import Settings
    from polytune.scheduler import Scheduler

    services, db = build_services(Settings(database_url=url, data_dir=data_dir))
    Scheduler(db, services.jobs, _QuickWorkers(db), slots=SLOTS_EACH, interval=0.01).start()
    while True:
        time.sleep(1)


@pytest.mark.skipif(not PG_URL, reason="needs POLYTUNE_TEST_DATABASE_URL (PostgreSQL)")
def test_two_schedulers_start_every_job_exactly_once(tmp_path):
    url, drop = make_database_url("postgresql", tmp_path)
    try:
        db = Database(url)
        db.migrate()
        orgs = [add_org(db) for _ in range(3)]
        jobs = [add_job(db, orgs[i % 3]) for i in range(N_JOBS)]
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_serve, args=(url, str(tmp_path / f"server-{i}"))) for i in range(2)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.session() as s:
                left = s.scalar(
                    sa.select(sa.func.count()).select_from(t.Job).where(t.Job.status != JobStatus.SUCCEEDED.value)
                )
            if not left:
                break
            time.sleep(0.2)
        for p in procs:
            p.terminate()
            p.join(10)
        with db.session() as s:
            statuses = dict(s.execute(sa.select(t.Job.id, t.Job.status)).all())
            starts = s.execute(
                sa.select(t.JobEvent.job_id, sa.func.count())
                .where(t.JobEvent.message == "Fine-tuning job started")
                .group_by(t.JobEvent.job_id)
            ).all()
        assert sorted(statuses.values()) == ["succeeded"] * N_JOBS
        assert dict(starts) == {j: 1 for j in jobs}
        db.dispose()
    finally:
        drop()
