"""Jobs that survive, on a live server: pause and resume, a worker killed mid-epoch, cancel in
every state, a server killed or stopped while jobs run, two servers on one database, and a
disk that fills up while a checkpoint is saved. Resumed runs must end exactly where an
uninterrupted run with the same seed ends."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess

import openai
import pytest
import sqlalchemy as sa
from safetensors.torch import load_file

from polytune.config import Settings
from polytune.inference.weights import local_model_dir
from tests.conftest import PG_URL, LiveServer, make_database_url
from tests.helpers import chat_jsonl, group_gone, wait_for

pytestmark = pytest.mark.slow
TERMINAL = ("succeeded", "failed", "cancelled")
# 16 examples, batch 2: 8 steps an epoch; 6 epochs = 48 steps, long enough to interrupt
# (pause at 10, kill at 13, SIGTERM at 6) with resume checkpoints every 4.
HP = {"n_epochs": 6, "batch_size": 2, "learning_rate": 2e-3, "n_checkpoints": 1}
SEED = 5
RESUME_EVERY = "4"


def _client(server, key):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)


def _row(server, job_id: str) -> dict:
    eng = sa.create_engine(server.env["POLYTUNE_DATABASE_URL"])
    try:
        with eng.connect() as c:
            row = (
                c.execute(
                    sa.text("SELECT status, worker, resume_step, attempts FROM jobs WHERE id = :i"), {"i": job_id}
                )
                .mappings()
                .one()
            )
    finally:
        eng.dispose()
    row = dict(row)
    if isinstance(row["worker"], str):
        row["worker"] = json.loads(row["worker"])
    return row


def _create(client, file_id: str, **hp):
    return client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=file_id, seed=SEED, hyperparameters={**HP, **hp}
    )


def _upload(client, n=16):
    return client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(n))), purpose="fine-tune").id


def _status(job) -> str:
    """polytune's own status (`status` is OpenAI's enum: a paused job reads "queued" there)."""
    return job.model_extra["polytune_status"]


def _wait(client, job_id, pred, timeout=300):
    return wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job_id)) and pred(j) and j, timeout)


def _done(client, job_id, timeout=300):
    return _wait(client, job_id, lambda j: j.status in TERMINAL, timeout)


def _at_step(client, job_id, step):
    return _wait(client, job_id, lambda j: j.status == "running" and (j.model_extra.get("trained_steps") or 0) >= step)


def _final(server, client, job) -> tuple[float, dict]:
    rows = list(csv.DictReader(io.StringIO(client.files.content(job.result_files[0]).text)))
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))  # no step lost or doubled
    settings = Settings(data_dir=server.tmp / "data", database_url=server.env["POLYTUNE_DATABASE_URL"])
    weights = load_file(str(local_model_dir(settings, job.fine_tuned_model) / "model.safetensors"))
    return float(rows[-1]["train_loss"]), weights


def _same_result(a, b) -> None:
    (loss_a, w_a), (loss_b, w_b) = a, b
    assert loss_a == pytest.approx(loss_b, abs=1e-5)
    assert max(float((w_a[k] - w_b[k]).abs().max()) for k in w_a) < 1e-5


def _messages(client, job_id) -> list[str]:
    return [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=1000)]


# The heavy fault tests run on SQLite; PostgreSQL's part (many processes on one database) is
# test_two_servers_on_one_database_run_every_job_once, and the store tests run on both.
@pytest.fixture(scope="module")
def lserver(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lifecycle")
    url, drop = make_database_url("sqlite", tmp)
    srv = LiveServer(tmp, url, POLYTUNE_RESUME_CHECKPOINT_STEPS=RESUME_EVERY)
    srv.key = srv.create_key("life")
    yield srv
    srv.stop()
    drop()


@pytest.fixture(scope="module")
def reference(lserver):
    """The uninterrupted run every interrupted one must match."""
    client = _client(lserver, lserver.key)
    job = _done(client, _create(client, _upload(client)).id)
    assert job.status == "succeeded", job.error
    return _final(lserver, client, job)


def test_pause_then_resume_matches_uninterrupted(lserver, reference):
    client = _client(lserver, lserver.key)
    job = _create(client, _upload(client))
    _at_step(client, job.id, 10)
    pid = _row(lserver, job.id)["worker"]["pid"]
    assert _status(client.fine_tuning.jobs.pause(job.id)) in ("pausing", "paused")
    paused = _wait(client, job.id, lambda j: _status(j) == "paused", 60)
    wait_for(lambda: group_gone(pid), 30)  # the worker is freed
    step = _row(lserver, job.id)["resume_step"]
    assert step and any(f"paused at step {step}" in m for m in _messages(client, job.id))
    assert paused.fine_tuned_model is None
    assert client.fine_tuning.jobs.resume(job.id).status == "queued"
    done = _done(client, job.id)
    assert done.status == "succeeded", done.error
    assert any(f"Resuming from the checkpoint at step {step}" in m for m in _messages(client, job.id))
    _same_result(_final(lserver, client, done), reference)


def test_worker_killed_mid_epoch_resumes_from_checkpoint(lserver, reference):
    client = _client(lserver, lserver.key)
    job = _create(client, _upload(client))
    _at_step(client, job.id, 13)  # past a checkpoint, in the middle of epoch 2
    row = _row(lserver, job.id)
    assert row["resume_step"] and row["resume_step"] % int(RESUME_EVERY) == 0
    os.killpg(row["worker"]["pid"], signal.SIGKILL)
    done = _done(client, job.id)
    assert done.status == "succeeded", done.error
    messages = _messages(client, job.id)
    assert any("SIGKILL" in m and "Retry 1 of" in m for m in messages)
    assert any("Resuming from the checkpoint at step" in m for m in messages)
    assert _row(lserver, job.id)["attempts"] == 2
    _same_result(_final(lserver, client, done), reference)


def test_cancel_in_every_state(lserver):
    client = _client(lserver, lserver.key)
    fid = _upload(client)
    running = _create(client, fid)
    queued = _create(client, fid)
    validating = _create(client, fid)
    assert client.fine_tuning.jobs.cancel(validating.id).status == "cancelled"
    _at_step(client, running.id, 2)
    assert client.fine_tuning.jobs.retrieve(queued.id).status == "queued"
    assert client.fine_tuning.jobs.cancel(queued.id).status == "cancelled"
    # pausing: the pause answer is "pausing" until the worker's next step; cancel right away.
    assert _status(client.fine_tuning.jobs.pause(running.id)) == "pausing"
    assert client.fine_tuning.jobs.cancel(running.id).status == "cancelled"
    paused_job = _create(client, fid)
    _at_step(client, paused_job.id, 2)
    client.fine_tuning.jobs.pause(paused_job.id)
    _wait(client, paused_job.id, lambda j: _status(j) == "paused", 60)
    assert client.fine_tuning.jobs.cancel(paused_job.id).status == "cancelled"
    running2 = _create(client, fid)
    _at_step(client, running2.id, 2)
    pid = _row(lserver, running2.id)["worker"]["pid"]
    assert client.fine_tuning.jobs.cancel(running2.id).status == "cancelled"
    wait_for(lambda: group_gone(pid), 30)
    for j in (validating, queued, running, paused_job, running2):
        assert client.fine_tuning.jobs.cancel(j.id).status == "cancelled"  # idempotent
        assert client.fine_tuning.jobs.retrieve(j.id).fine_tuned_model is None


def _kill_workers(server) -> None:
    eng = sa.create_engine(server.env["POLYTUNE_DATABASE_URL"])
    with eng.connect() as c:
        workers = [w for (w,) in c.execute(sa.text("SELECT worker FROM jobs WHERE status = 'running'"))]
    eng.dispose()
    for w in workers:
        w = json.loads(w) if isinstance(w, str) else w
        if w:
            try:
                os.killpg(int(w["pid"]), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("backend", ["postgresql"] if PG_URL else ["sqlite"])
def test_server_killed_with_two_running_and_one_queued(backend, tmp_path):
    url, drop = make_database_url(backend, tmp_path)
    env = {"POLYTUNE_WORKER_SLOTS": "2", "POLYTUNE_RESUME_CHECKPOINT_STEPS": RESUME_EVERY}
    server = LiveServer(tmp_path, url, **env)
    try:
        key = server.create_key("crash")
        client = _client(server, key)
        fid = _upload(client)
        jobs = [_create(client, fid, n_epochs=2).id for _ in range(3)]
        wait_for(
            lambda: (
                sum(
                    client.fine_tuning.jobs.retrieve(j).status == "running"
                    and (client.fine_tuning.jobs.retrieve(j).model_extra.get("trained_steps") or 0) > 5
                    for j in jobs
                )
                >= 2
            ),
            300,
        )
        # The whole machine goes down: server and workers at once.
        server.kill()
        _kill_workers(server)
        server = LiveServer(tmp_path, url, **env)
        client = _client(server, key)
        finished = [_done(client, j, 600) for j in jobs]
        assert [j.status for j in finished] == ["succeeded"] * 3, [j.error for j in finished]
        models = [m.id for m in client.models.list().data if m.id.startswith("ft:") and ":ckpt-" not in m.id]
        assert sorted(models) == sorted(j.fine_tuned_model for j in finished)  # one model each
        for j in finished:
            starts = [m for m in _messages(client, j.id) if m == "Fine-tuning job started"]
            assert len(starts) == _row(server, j.id)["attempts"] <= 2
    finally:
        server.stop()
        drop()


def test_sigterm_checkpoints_and_the_next_start_resumes(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    env = {"POLYTUNE_RESUME_CHECKPOINT_STEPS": "0", "POLYTUNE_RESUME_CHECKPOINT_MINUTES": "0"}
    server = LiveServer(tmp_path, url, **env)
    key = server.create_key("term")
    client = _client(server, key)
    job = _create(client, _upload(client))
    _at_step(client, job.id, 6)
    pid = _row(server, job.id)["worker"]["pid"]
    server.stop()  # SIGTERM, then wait
    assert group_gone(pid)
    row = _row(server, job.id)
    assert row["status"] == "queued" and row["resume_step"] >= 6  # saved on the way out, not before
    server = LiveServer(tmp_path, url, **env)
    try:
        client = _client(server, key)
        done = _done(client, job.id)
        assert done.status == "succeeded", done.error
        assert any(f"Resuming from the checkpoint at step {row['resume_step']}" in m for m in _messages(client, job.id))
    finally:
        server.stop()


@pytest.mark.skipif(not PG_URL, reason="needs POLYTUNE_TEST_DATABASE_URL (PostgreSQL)")
def test_two_servers_on_one_database_run_every_job_once(tmp_path):
    url, drop = make_database_url("postgresql", tmp_path)
    a = LiveServer(tmp_path / "a", url, POLYTUNE_WORKER_SLOTS="2", POLYTUNE_STORAGE_URL=str(tmp_path / "blobs"))
    b = LiveServer(tmp_path / "b", url, POLYTUNE_WORKER_SLOTS="2", POLYTUNE_STORAGE_URL=str(tmp_path / "blobs"))
    try:
        key = a.create_key("two")
        ca, cb = _client(a, key), _client(b, key)
        fid = _upload(ca, 10)
        jobs = [
            (ca if i % 2 else cb)
            .fine_tuning.jobs.create(
                model="polytune-tiny", training_file=fid, hyperparameters={"n_epochs": 1, "batch_size": 5}
            )
            .id
            for i in range(4)
        ]
        finished = [_done(ca, j, 900) for j in jobs]
        assert all(j.status == "succeeded" for j in finished), [j.error for j in finished]
        for j in jobs:
            assert [m for m in _messages(ca, j) if m == "Fine-tuning job started"] == ["Fine-tuning job started"]
    finally:
        a.stop()
        b.stop()
        drop()


def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir()
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def test_disk_full_while_saving_a_checkpoint(tmp_path):
    store = tmp_path / "store"
    if not _mount_tmpfs(store, "20m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        server = LiveServer(
            tmp_path,
            f"sqlite:///{tmp_path / 'db.sqlite'}",
            POLYTUNE_STORAGE_URL=str(store),
            POLYTUNE_RESUME_CHECKPOINT_STEPS=RESUME_EVERY,
        )
        try:
            client = _client(server, server.create_key("full"))
            job = _create(client, _upload(client))
            failed = _done(client, job.id)
            assert failed.status == "failed"
            assert failed.error.code == "storage_full" and "space" in failed.error.message
            row = _row(server, job.id)
            assert row["resume_step"]  # the first checkpoint fitted; the second did not
            ckpt = store / "jobs" / job.id / "resume" / f"step-{row['resume_step']}"
            weights = load_file(str(ckpt / "model.safetensors"))  # intact and readable
            assert weights and (ckpt / "optimizer.pt").stat().st_size > 0
            assert not [p for p in store.rglob("*.partial-*")]  # no half-written blob left behind
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)
