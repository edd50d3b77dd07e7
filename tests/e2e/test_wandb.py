"""W&B through the real service: a job with a `wandb` integration logs an offline run (config,
the job's own metrics, job id and model in the summary) that is attached to the job and read
back with wandb's own reader; the organization's key (set with the CLI) reaches the worker and
never appears in a response, an event, a log or anything stored in clear."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest

from tests.conftest import BIN
from tests.helpers import chat_jsonl, wait_for
from tests.wandb_reader import read_run

ORG_KEY = "wb-org-key-7f3a91c2e4b5d6a8f0e1c2d3b4a5968778695a4b"


@pytest.mark.slow
def test_wandb_offline_run_has_config_and_metrics_and_the_key_stays_secret(server, client, tmp_path):
    if server.backend != "sqlite":
        pytest.skip("trains a model; once is enough")
    # The organization's key, set the way an administrator does: read from standard input.
    set_key = subprocess.run(
        [str(BIN / "polytune"), "integrations", "set-wandb-key", "--org", "org-a"],
        input=ORG_KEY + "\n",
        capture_output=True,
        text=True,
        env=server.env,
        timeout=60,
    )
    assert set_key.returncode == 0, set_key.stderr
    assert ORG_KEY not in set_key.stdout + set_key.stderr

    training = client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    created = client.fine_tuning.jobs.with_raw_response.create(
        model="polytune-tiny",
        training_file=training.id,
        suffix="wb",
        seed=5,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}},
        integrations=[{"type": "wandb", "wandb": {"project": "polytune-e2e", "name": "tiny", "tags": ["e2e"]}}],
    )
    job = created.parse()
    done = wait_for(
        lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled") and j,
        240,
    )
    assert done.status == "succeeded", done.error

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=200))
    (started,) = [e for e in events if e.message.startswith("Logging to W&B")]
    assert started.data["mode"] == "offline" and started.data["api_key_from"] == "organization"
    assert not [e for e in events if e.level == "warn"], [e.message for e in events if e.level == "warn"]

    # The run directory is a result file of the job; unpack it and read the run.
    (wandb_file,) = [f for f in done.result_files if client.files.retrieve(f).filename.endswith("-wandb.tar")]
    archive = client.files.content(wandb_file).content
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(tmp_path, filter="data")
    (run_file,) = tmp_path.glob("wandb/offline-run-*/run-*.wandb")
    run = read_run(run_file)
    assert (run["project"], run["name"], run["tags"]) == ("polytune-e2e", "tiny", ["e2e"])
    hp = done.hyperparameters
    assert run["config"]["n_epochs"] == hp.n_epochs == 2 and run["config"]["batch_size"] == hp.batch_size == 4
    (trainer_settings,) = [e.data for e in events if e.message.startswith("Training started")]
    assert run["config"]["learning_rate"] == trainer_settings["learning_rate"]
    assert run["config"]["model"] == "polytune-tiny" and run["config"]["seed"] == 5
    # The same metrics as the job's metrics events, step for step.
    job_losses = {
        e.data["step"]: e.data["train_loss"] for e in events if e.type == "metrics" and "train_loss" in e.data
    }
    run_losses = {h["_step"]: h["train_loss"] for h in run["history"] if "train_loss" in h}
    assert job_losses and run_losses == job_losses
    assert run["summary"]["job_id"] == job.id and run["summary"]["fine_tuned_model"] == done.fine_tuned_model

    # The key is nowhere: not in any API response, event, log, the run directory, or the database.
    responses = [
        created.text,
        client.fine_tuning.jobs.with_raw_response.retrieve(job.id).text,
        client.fine_tuning.jobs.with_raw_response.list(limit=100).text,
        client.fine_tuning.jobs.with_raw_response.list_events(job.id, limit=200).text,
        client.fine_tuning.jobs.checkpoints.with_raw_response.list(job.id).text,
        client.files.with_raw_response.list().text,
    ]
    assert not [r for r in responses if ORG_KEY in r]
    assert ORG_KEY.encode() not in archive
    in_clear = [p for p in server.tmp.rglob("*") if p.is_file() and ORG_KEY.encode() in p.read_bytes()]
    assert not in_clear, in_clear
    logs = list(server.tmp.glob("data/logs/*.log")) + [server.tmp / "server.log"]
    assert any(job.id in p.name for p in logs)
