"""The scheduler's claim policy on a real database: queue order, fairness across
organizations, the per-organization limit, and retries of jobs whose worker died."""

from __future__ import annotations

import sqlalchemy as sa

from polytune.domain.job import JobStatus
from polytune.executors.base import WorkerExit
from polytune.scheduler import Scheduler
from polytune.store import tables as t
from tests.rows import add_job, add_org


def _status(db, job_id: str) -> str:
    with db.session() as s:
        return s.scalar(sa.select(t.Job.status).where(t.Job.id == job_id))


class _Exits:
    """The executor's side of a worker that died: what `reap` reports. The scheduler's response
    to it is what is under test."""

    def __init__(self, exits):
        self.exits = exits

    def reap(self):
        out, self.exits = self.exits, []
        return out


def test_queue_order_within_one_org(db):
    org = add_org(db)
    jobs = [add_job(db, org) for _ in range(3)]
    sch = Scheduler(db, None, None, slots=1)
    assert [sch._claim() for _ in range(4)] == [*jobs, None]


def test_a_small_org_is_not_starved_by_a_big_one(db):
    a, b = add_org(db), add_org(db)
    a_jobs = [add_job(db, a) for _ in range(20)]
    b_job = add_job(db, b)
    sch = Scheduler(db, None, None, slots=1)
    assert sch._claim() == a_jobs[0]  # A's first job takes the free slot
    assert sch._claim() == b_job  # the next free slot goes to B, not A's second job
    assert sch._claim() == a_jobs[1]


def test_per_org_limit(db):
    a, b = add_org(db), add_org(db)
    a_jobs = [add_job(db, a) for _ in range(3)]
    b_job = add_job(db, b)
    sch = Scheduler(db, None, None, slots=10, max_jobs_per_org=1)
    claimed = {sch._claim(), sch._claim(), sch._claim()}
    assert claimed == {a_jobs[0], b_job, None}
    assert _status(db, a_jobs[1]) == "queued"


def test_dead_worker_is_retried_then_fails(db):
    org = add_org(db)
    job = add_job(db, org, JobStatus.RUNNING, attempts=1, resume_step=7, resume_key="jobs/x/resume/step-7")
    sch = Scheduler(db, None, _Exits([WorkerExit(job, -9)]), slots=1, max_retries=1)
    sch._reap()
    assert _status(db, job) == "queued"
    with db.session() as s:
        msg = s.scalar(sa.select(t.JobEvent.message).where(t.JobEvent.job_id == job).order_by(t.JobEvent.seq.desc()))
    assert "SIGKILL" in msg and "resume from step 7" in msg and "Retry 1 of 1" in msg
    assert sch._claim() == job  # attempts becomes 2
    sch.executor = _Exits([WorkerExit(job, -9)])
    sch._reap()
    assert _status(db, job) == "failed"


def test_dead_worker_while_pausing_leaves_the_job_paused(db):
    job = add_job(db, add_org(db), JobStatus.PAUSING, attempts=1)
    Scheduler(db, None, _Exits([WorkerExit(job, -9)]), slots=1)._reap()
    assert _status(db, job) == "paused"


class _Accelerators:
    """An executor with 4 accelerators whose jobs take n_accel x n_node of them, as a cluster
    executor counts them; its workers run until the test ends them."""

    def __init__(self):
        self.live: list[str] = []

    def capacity(self) -> int:
        return 4

    def demand(self, resources) -> int:
        return resources.n_accel * resources.n_node

    def submit(self, job_id: str) -> dict:
        self.live.append(job_id)
        return {"executor": "test"}

    def running(self) -> list[str]:
        return list(self.live)


def _ask(db, job_id: str, n_accel: int) -> str:
    with db.session() as s:
        row = s.scalar(sa.select(t.Job).where(t.Job.id == job_id))
        row.spec = {**row.spec, "resources": {"accel_type": None, "n_accel": n_accel, "n_node": 1}}
    return job_id


def test_dispatch_fills_the_accelerators_by_demand_and_fairness(db):
    a, b = add_org(db), add_org(db)
    a2, a4 = _ask(db, add_job(db, a), 2), _ask(db, add_job(db, a), 4)
    b1 = _ask(db, add_job(db, b), 1)
    ex = _Accelerators()
    sch = Scheduler(db, None, ex, slots=1)
    sch._dispatch()
    # a's 2 first (oldest), then b's 1 (b uses fewer accelerators); a's 4 does not fit in the 1 left
    assert ex.live == [a2, b1] and _status(db, a4) == "queued"
    for job in (a2, b1):
        with db.session() as s:
            s.execute(sa.update(t.Job).where(t.Job.id == job).values(status="succeeded"))
    ex.live.clear()
    sch._dispatch()
    assert ex.live == [a4]
