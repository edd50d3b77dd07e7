"""A real tiny training through the official openai SDK against a live server: to succeeded,
cancelled while running, and a worker killed with SIGKILL (retried; see test_lifecycle.py)."""

from __future__ import annotations

import csv
import io
import os
import signal

import httpx
import pytest

from tests.helpers import chat_jsonl, group_gone, job_worker, ray_task_pid, wait_done, wait_for, wait_training

pytestmark = pytest.mark.slow


def _upload(client, n: int = 12):
    return client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(n))), purpose="fine-tune").id


def test_supervised_job_trains_to_succeeded(client, client_b):
    train, val = _upload(client, 16), _upload(client, 4)
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=train,
        validation_file=val,
        suffix="e2e",
        seed=3,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4, "batch_size": 4}}},
    )
    done = wait_done(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model.startswith("ft:polytune-tiny:org-a:e2e:")
    assert done.trained_tokens and done.trained_tokens > 0
    assert done.hyperparameters.n_epochs == 4 and done.hyperparameters.batch_size == 4
    assert done.finished_at >= done.created_at

    # 16 examples / batch 4 = 4 steps an epoch; checkpoints at the end of the last 3 epochs.
    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in ckpts) == [8, 12, 16]
    for c in ckpts:
        assert c.fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-{c.step_number}"
        assert c.metrics.train_loss is not None

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) >= 16
    assert any("valid_loss" in (e.data or {}) for e in metrics)
    assert any("successfully completed" in e.message for e in events)

    (results_id,) = done.result_files
    meta = client.files.retrieve(results_id)
    assert meta.purpose == "fine-tune-results"
    rows = list(csv.DictReader(io.StringIO(client.files.content(results_id).text)))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
        "learning_rate",
    ]
    assert all(float(r["learning_rate"]) > 0 for r in rows)
    assert [int(r["step"]) for r in rows] == list(range(1, 17))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])

    ids = {m.id for m in client.models.list().data}
    assert done.fine_tuned_model in ids and ckpts[0].fine_tuned_model_checkpoint in ids
    made = client.models.retrieve(done.fine_tuned_model).model_dump()
    assert made["owned_by"] == done.organization_id and made["fine_tuning_job_id"] == done.id
    assert (made["model_type"], made["base_model"]) == ("chat", "polytune-tiny")
    assert done.fine_tuned_model not in {m.id for m in client_b.models.list().data}


def test_cancel_running_job_frees_its_process_group(server, client):
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=_upload(client, 40), hyperparameters={"n_epochs": 100, "batch_size": 1}
    )
    wait_training(client, job.id)
    if server.executor == "local":
        pid = int(job_worker(server, job.id)["pid"])
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        wait_for(lambda: group_gone(pid), timeout=30)
    else:  # the job's Ray task ends (its pooled process goes back to idle)
        assert ray_task_pid(job.id)
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
        wait_for(lambda: ray_task_pid(job.id) is None, timeout=30)
    final = client.fine_tuning.jobs.retrieve(job.id)
    assert final.status == "cancelled" and final.fine_tuned_model is None
    assert httpx.get(f"{server.url}/health").status_code == 200


@pytest.mark.sqlite_only
def test_worker_killed_is_retried_and_the_server_is_fine(server, client):
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=_upload(client, 40), hyperparameters={"n_epochs": 2, "batch_size": 1}
    )
    wait_training(client, job.id)
    os.killpg(int(job_worker(server, job.id)["pid"]), signal.SIGKILL)
    done = wait_done(client, job.id, timeout=300)
    assert done.status == "succeeded", done.error
    retries = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=200) if "Retry 1" in e.message]
    assert retries and "SIGKILL" in retries[0]
    assert httpx.get(f"{server.url}/health").status_code == 200
