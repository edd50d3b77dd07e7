"""Job rows on a real database (SQLite, and PostgreSQL when configured): migrations, the one
way a status changes, and the scheduler's claim never handing one job out twice."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from polytune.domain.job import IllegalTransition, JobStatus
from polytune.store import jobs as job_store
from polytune.store import tables as t
from polytune.store.db import Database
from tests.rows import add_job, add_org


@pytest.fixture
def db(database_url):
    d = Database(database_url)
    d.migrate()
    d.migrate()  # idempotent: a second start changes nothing
    yield d
    d.dispose()


def _events(db, job_id: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(sa.select(t.JobEvent.message).where(t.JobEvent.job_id == job_id)))


def test_transition_writes_status_and_event_together(db):
    job_id = add_job(db, add_org(db))
    with db.session() as s:
        row = job_store.get_row(s, job_id)
        job_store.transition(s, row, JobStatus.RUNNING, "started")
    with db.session() as s:
        assert job_store.get_row(s, job_id).status == "running"
    assert _events(db, job_id) == ["started"]


def test_illegal_transition_changes_nothing(db):
    job_id = add_job(db, add_org(db), JobStatus.SUCCEEDED)
    with pytest.raises(IllegalTransition):
        with db.session() as s:
            job_store.transition(s, job_store.get_row(s, job_id), JobStatus.RUNNING, "no")
    with db.session() as s:
        assert job_store.get_row(s, job_id).status == "succeeded"
    assert _events(db, job_id) == []


def test_stale_transition_rolls_back(db):
    job_id = add_job(db, add_org(db))
    with pytest.raises(job_store.StaleTransition):
        with db.session() as s:
            row = job_store.get_row(s, job_id)
            # Someone else cancels between our read and our write.
            with db.session() as other:
                other.execute(sa.update(t.Job).where(t.Job.id == job_id).values(status="cancelled"))
            job_store.transition(s, row, JobStatus.RUNNING, "lost the race")
    with db.session() as s:
        assert job_store.get_row(s, job_id).status == "cancelled"
    assert _events(db, job_id) == []


def test_terminal_transition_sets_finished_at(db):
    job_id = add_job(db, add_org(db))
    with db.session() as s:
        job_store.transition(s, job_store.get_row(s, job_id), JobStatus.CANCELLED, "bye")
    with db.session() as s:
        assert job_store.get_row(s, job_id).finished_at is not None


def test_concurrent_claims_never_share_a_job(db, tmp_path):
    from polytune.scheduler import Scheduler

    org = add_org(db)
    jobs = [add_job(db, org) for _ in range(20)]
    schedulers = [Scheduler(Database(db.url), jobs=None, executor=None, slots=1) for _ in range(4)]
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_all(sch):
        while True:
            try:
                got = sch._claim()
            except Exception:  # SQLite may report a busy database under contention; try again
                continue
            if got is None:
                return
            with lock:
                claimed.append(got)

    threads = [threading.Thread(target=claim_all, args=(s,)) for s in schedulers]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    for s in schedulers:
        s.db.dispose()
    assert sorted(claimed) == sorted(jobs)
