"""Scheduler.place_now: a job that starts at once or not at all (a Tinker run) takes the
executor's accelerators like a worker does, under its organization's running-jobs limit and fair
share, on a real database; the live SDK path is tests/dialects/tinker/test_slots.py."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from polytune.domain.errors import QuotaExceeded
from polytune.domain.ids import new_id
from polytune.domain.job import JobStatus
from polytune.executors.accelerators import Pool
from polytune.scheduler import Scheduler
from polytune.store import tables as t
from tests.rows import add_job, add_org

SPEC = {"method": {"type": "primitives"}}


class _Devices:
    """An executor with two devices whose workers run until the test ends them; a job kept in the
    server (hold) takes its devices from the same pool as the workers."""

    def __init__(self):
        self.live: list[str] = []
        self.pool = Pool(("0", "1"))

    def capacity(self) -> int:
        return 2

    def demand(self, resources) -> int:
        return resources.n_accel

    def submit(self, job_id: str) -> dict:
        self.live.append(job_id)
        return {"executor": "test", "devices": list(self.pool.take(job_id, 1))}

    def running(self) -> list[str]:
        return list(self.live)

    def hold(self, job_id: str, n: int) -> tuple[str, ...]:
        return self.pool.take(job_id, n)

    def unhold(self, job_id: str) -> None:
        self.pool.release(job_id)


def _place(sch: Scheduler, db, org: str) -> tuple[str, str, tuple[str, ...]]:
    """What PrimitiveRuns.create does: the job is added as running inside the block. Returns the
    id it was placed as, its row's, and its devices."""
    with sch.place_now(placed := new_id("ftjob"), org, SPEC) as devices:
        row = add_job(db, org, JobStatus.RUNNING)
        with db.session() as s:
            s.execute(sa.update(t.Job).where(t.Job.id == row).values(spec=SPEC))
    return placed, row, devices


def _refusal(sch: Scheduler, org: str) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as refused, sch.place_now("ftjob-x", org, SPEC):
        pass
    return refused.value


def test_a_placed_run_holds_a_device_until_released(db):
    a, b = add_org(db), add_org(db)
    ex = _Devices()
    sch = Scheduler(db, None, ex, slots=1)
    run, _, devices = _place(sch, db, a)
    assert devices == ("0",)
    queued = [add_job(db, b), add_job(db, b)]
    sch._dispatch()  # one device left: one of B's jobs starts, on the other device
    assert ex.live == [queued[0]] and ex.pool.held(queued[0]) == ("1",)
    refusal = _refusal(sch, a)
    assert refusal.code == "no_free_accelerator" and "2 of 2" in refusal.message
    assert "worker_slots, POLYTUNE_WORKER_SLOTS" in refusal.message
    sch.release(run)  # cancelled, unloaded or released while idle
    sch._dispatch()
    assert ex.live == queued and ex.pool.held(queued[1]) == ("0",)


def test_the_running_jobs_limit_and_fair_share_apply(db):
    a, b = add_org(db), add_org(db)
    sch = Scheduler(db, None, _Devices(), slots=1, max_jobs_per_org=1)
    _place(sch, db, a)
    refusal = _refusal(sch, a)
    assert refusal.code == "running_jobs_limit" and "POLYTUNE_MAX_JOBS_PER_ORG" in refusal.message
    # A holds one device, B has a job queued (its scheduler pass not come yet): the free device
    # is B's in fair order, so B's own run does not take it either.
    sch.max_jobs_per_org = 0
    add_job(db, b)
    assert _refusal(sch, a).code == "fair_share_wait"


def test_a_run_released_while_idle_counts_for_nothing(db):
    a = add_org(db)
    sch = Scheduler(db, None, _Devices(), slots=1, max_jobs_per_org=1)
    run, row, _ = _place(sch, db, a)
    assert _refusal(sch, a).code == "running_jobs_limit"
    with db.session() as s:
        s.execute(sa.update(t.Job).where(t.Job.id == row).values(worker={"kind": "primitives", "released": True}))
    sch.release(run)
    _place(sch, db, a)  # neither the limit of 1 nor the devices count the released run
