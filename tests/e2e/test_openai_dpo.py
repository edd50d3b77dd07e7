"""A real DPO training through the official openai SDK against a live server: the job
succeeds, its metrics events carry the implicit rewards, its checkpoints and results CSV are
those of a supervised job plus the reward columns."""

from __future__ import annotations

import csv
import io

import pytest

from polytune.training.reporter import PREFERENCE_METRICS
from tests.helpers import preference_jsonl, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]


def test_dpo_job_trains_to_succeeded(server, client):
    if server.backend != "sqlite":
        pytest.skip("training end to end runs on one backend; the DB side is covered by the API tests")
    train = client.files.create(file=("pairs.jsonl", io.BytesIO(preference_jsonl(12))), purpose="fine-tune").id
    val = client.files.create(file=("val.jsonl", io.BytesIO(preference_jsonl(4))), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=train,
        validation_file=val,
        suffix="dpo",
        seed=5,
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1, "n_epochs": 3, "batch_size": 4}}},
    )
    done = wait_for(
        lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled") and j,
        timeout=300,
    )
    assert done.status == "succeeded", done.error
    assert done.method.type == "dpo" and done.method.dpo.hyperparameters.beta == 0.1
    assert done.fine_tuned_model.startswith("ft:polytune-tiny:org-a:dpo:")

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=200))
    (started,) = [e for e in events if e.message.startswith("Training started")]
    assert started.data["beta"] == 0.1 and started.data["loss_type"] == ["sigmoid"]
    metrics = [e.data for e in events if e.type == "metrics"]
    train_steps = [m for m in metrics if "train_loss" in m]
    assert len(train_steps) == 9  # 12 pairs / batch 4 = 3 steps an epoch, 3 epochs
    assert all(set(PREFERENCE_METRICS) <= set(m) for m in train_steps)
    assert any("valid_rewards/accuracies" in m for m in metrics)

    # 3 epochs, 3 checkpoints (the default): one at the end of each epoch.
    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert sorted(c.step_number for c in ckpts) == [3, 6, 9]
    assert all(c.metrics.train_loss is not None for c in ckpts)

    rows = list(csv.DictReader(io.StringIO(client.files.content(done.result_files[0]).text)))
    assert list(rows[0]) == [
        "step",
        "train_loss",
        "train_accuracy",
        "valid_loss",
        "valid_mean_token_accuracy",
        "learning_rate",
        *PREFERENCE_METRICS,
        *(f"valid_{k}" for k in PREFERENCE_METRICS),
    ]
    assert [int(r["step"]) for r in rows] == list(range(1, 10))
    assert float(rows[0]["rewards/accuracies"]) == 0.0  # step 1: the policy is still the reference
    assert rows[-1]["valid_rewards/accuracies"] != ""
    assert done.fine_tuned_model in {m.id for m in client.models.list().data}
