"""The local executor owns this machine's accelerators: each job gets its own devices through
CUDA_VISIBLE_DEVICES, capacity is counted in accelerators, and a job given accelerators whose
worker cannot use CUDA fails at once. The accelerators are faked by setting (POLYTUNE_ACCELERATORS):
the suite runs with CUDA_VISIBLE_DEVICES="" (tests/conftest.py)."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from polytune.config import Settings
from polytune.domain.errors import InvalidRequest
from polytune.domain.spec import Resources
from polytune.executors import accelerators as accel
from polytune.executors.local import LocalExecutor, worker_command
from polytune.scheduler import Scheduler
from polytune.store import tables as t
from polytune.store.db import Database
from tests.rows import add_job, add_org


@pytest.mark.parametrize(
    "value, ids",
    [
        ("0,1,2,3", ("0", "1", "2", "3")),
        ("4", ("0", "1", "2", "3")),
        ("2,5", ("2", "5")),
        ("0", ()),
        ("none", ()),
        ("", ()),
        (" 1 , 3 ", ("1", "3")),
    ],
)
def test_the_setting_is_a_list_of_ids_or_a_count(value, ids):
    assert accel.parse(value) == ids


@pytest.mark.parametrize("value", ["gpu0", "1,1", "-2"])
def test_a_bad_setting_is_refused(value):
    with pytest.raises(ValueError, match="POLYTUNE_ACCELERATORS"):
        accel.parse(value)


def test_detection_without_the_setting_and_no_visible_device_finds_none():
    # CUDA_VISIBLE_DEVICES is "" in the suite: nothing to ask torch.
    assert not accel.detect(None, None)
    assert accel.detect("2,3", 80).memory == 80 * 1024**3


def test_the_server_log_says_which_torch_build_and_devices_it_has():
    import torch

    line = accel.describe_torch()  # logged at start by the local executor
    assert line.startswith(f"torch {torch.__version__}, CUDA ")
    # The suite hides every device (CUDA_VISIBLE_DEVICES=""), as a CPU build would have none.
    assert line.endswith("no CUDA device available")
    if torch.version.cuda is None:
        assert "none (a CPU build of torch)" in line


def test_the_pool_gives_each_job_its_own_devices():
    pool = accel.Pool(("0", "1", "2", "3"))
    assert pool.take("a", 2) == ("0", "1")
    assert pool.take("b", 1) == ("2",)
    assert pool.take("a", 2) == ("0", "1")  # asked again: the same devices
    with pytest.raises(RuntimeError, match="needs 2"):
        pool.take("c", 2)
    pool.release("a")
    assert pool.take("c", 2) == ("0", "1") and pool.free() == ["3"]


def test_capacity_and_demand_count_accelerators_or_cpu_slots(tmp_path):
    gpus = LocalExecutor(Settings(data_dir=tmp_path, warm_workers=False, accelerators="0,1,2,3", worker_slots=2))
    assert gpus.capacity() == 4 and gpus.demand(Resources(n_accel=3)) == 3
    assert gpus.memory_capacity is None or gpus.memory_capacity.devices == 4
    with pytest.raises(InvalidRequest) as e:
        gpus.check(_spec(n_accel=5))
    assert e.value.param == "resources.n_accel" and "this machine has 4" in e.value.message
    with pytest.raises(InvalidRequest) as e:
        gpus.check(_spec(n_node=2))
    assert e.value.param == "resources.n_node"
    cpu = LocalExecutor(Settings(data_dir=tmp_path, warm_workers=False, worker_slots=2))
    assert cpu.capacity() == 2 and cpu.demand(Resources(n_accel=3)) == 1  # today's behaviour on CPU
    cpu.check(_spec(n_accel=8))  # nothing refused on CPU: the job runs in one process here


def test_a_multi_accelerator_job_runs_one_process_per_device_through_torchrun():
    assert worker_command("ftjob-1", 1)[1:] == ["-m", "polytune.training.runner", "ftjob-1"]
    cmd = worker_command("ftjob-1", 4)
    assert cmd[1:5] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=4"]
    assert cmd[-3:] == ["-m", "polytune.training.runner", "ftjob-1"]


def _spec(**resources):
    from polytune.domain.spec import JobSpec

    return JobSpec(model="polytune-tiny", training_files=["file-x"], resources=Resources(**resources))


def _ask(db: Database, job_id: str, n_accel: int) -> str:
    with db.session() as s:
        row = s.scalar(sa.select(t.Job).where(t.Job.id == job_id))
        row.spec = {**row.spec, "resources": {"accel_type": None, "n_accel": n_accel, "n_node": 1}}
    return job_id


def _job(db: Database, job_id: str) -> t.Job:
    with db.session() as s:
        row = s.scalar(sa.select(t.Job).where(t.Job.id == job_id))
        s.expunge(row)
        return row


def test_jobs_get_their_own_devices_and_fail_at_once_without_cuda(tmp_path, database_url):
    settings = Settings(data_dir=tmp_path, database_url=database_url, warm_workers=False, accelerators="0,1,2")
    db = Database(settings.resolved_database_url)
    db.migrate()
    org = add_org(db)
    two, one, later = _ask(db, add_job(db, org), 2), _ask(db, add_job(db, org), 1), _ask(db, add_job(db, org), 1)
    ex = LocalExecutor(settings)
    sch = Scheduler(db, None, ex, slots=1, heartbeat_timeout=300)
    try:
        sch._dispatch()
        # 3 accelerators: the 2-device job and one 1-device job start; the third waits for a device.
        assert sorted(ex.running()) == sorted([two, one])
        assert _job(db, two).worker["devices"] == ["0", "1"] and _job(db, one).worker["devices"] == ["2"]
        assert _job(db, later).status == "queued"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (ex.running() or _job(db, later).status == "queued"):
            # Dispatch before reaping: a worker that exited but is not reaped yet gives up its devices.
            sch._dispatch()
            sch._reap()
            time.sleep(0.2)
        for job_id, devices in ((two, "0,1"), (one, "2")):
            row = _job(db, job_id)
            # The worker saw only its own devices, and torch (a CPU build here) could not use them.
            assert row.status == "failed" and row.error["code"] == "accelerator_unavailable", row.error
            assert devices in row.error["message"]
            assert f"devices {devices}" in (tmp_path / "logs" / f"{job_id}.log").read_text()
        # The freed devices went to the job that waited.
        assert len(_job(db, later).worker["devices"]) == 1
        assert _job(db, two).attempts <= 1  # failed by the worker itself: not retried
    finally:
        ex.shutdown()
        db.dispose()


def test_an_image_job_takes_one_of_the_devices_it_asked(tmp_path):
    settings = Settings(data_dir=tmp_path, warm_workers=False, accelerators="0,1,2,3")
    db = Database(settings.resolved_database_url)
    db.migrate()
    org = add_org(db)
    text, image = _ask(db, add_job(db, org), 2), _ask(db, add_job(db, org), 2)
    with db.session() as s:
        row = s.scalar(sa.select(t.Job).where(t.Job.id == image))
        row.spec = {**row.spec, "method": "image_generation"}
    ex = LocalExecutor(settings)
    try:
        # The image recipe is one process (as on Ray): one device; a text job gets all it asked.
        assert ex._n_accel(image) == 1 and ex._n_accel(text) == 2
    finally:
        ex.shutdown()
        db.dispose()
