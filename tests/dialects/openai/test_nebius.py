"""Nebius through the official openai SDK: its extra hyperparameters (top level, under
method.supervised, and in extra_body) reach the trainer and are echoed; tags; the W&B key is
never echoed; checkpoints carry downloadable weights; the single-checkpoint route."""

from __future__ import annotations

import io
import json
import tarfile

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl, wait_for

TERMINAL = ("succeeded", "failed", "cancelled")
SECRET = "wandb-secret-never-echoed"
EXTRAS = {
    "learning_rate": 0.004,
    "lora": True,
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.05,
    "packing": True,
    "max_grad_norm": 0.5,
    "context_length": 256,
    "warmup_ratio": 0.1,
}


def _upload(client, n: int) -> str:
    return client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(n))), purpose="fine-tune").id


def _count_jobs(client) -> int:
    return len(client.fine_tuning.jobs.list(limit=1000).data)


@pytest.mark.slow
def test_nebius_extras_reach_the_trainer_and_checkpoints_carry_weights(server, client):
    created = client.fine_tuning.jobs.with_raw_response.create(
        model="polytune-tiny",
        training_file=_upload(client, 16),
        seed=11,
        hyperparameters={"n_epochs": 2, "batch_size": 4, **EXTRAS},
        integrations=[{"type": "wandb", "wandb": {"project": "neb", "name": "run", "api_key": SECRET}}],
        # The SDK merges extra_body into the JSON body: Nebius's `tags` and its own `extra_body`.
        extra_body={"tags": ["nebius", "e2e"], "extra_body": {"weight_decay": 0.01}},
    )
    assert SECRET not in created.text
    job = created.parse()
    assert job.status == "validating_files"
    assert job.model_extra["tags"] == ["nebius", "e2e"]

    done = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in TERMINAL and j, 240)
    assert done.status == "succeeded", done.error
    hp = done.hyperparameters.to_dict()
    assert hp | EXTRAS == hp and hp["weight_decay"] == 0.01 and hp["n_epochs"] == 2
    assert done.method.supervised.hyperparameters.to_dict()["lora_r"] == 4
    assert done.model_extra["trained_steps"] == done.model_extra["total_steps"] > 0
    assert done.integrations[0].wandb.project == "neb"

    # What the trainer was given, read back from the trainer itself by the worker.
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    (started,) = [e for e in events if e.message.startswith("Training started")]
    got = started.data
    assert got["learning_rate"] == 0.004 and got["weight_decay"] == 0.01 and got["max_grad_norm"] == 0.5
    assert got["max_length"] == 256 and got["packing"] is True and got["warmup_steps"] == 0.1
    assert got["lora"]["r"] == 4 and got["lora"]["alpha"] == 8 and got["lora"]["dropout"] == 0.05
    raw = [
        client.fine_tuning.jobs.with_raw_response.retrieve(job.id).text,
        client.fine_tuning.jobs.with_raw_response.list(limit=100).text,
    ]
    assert all(SECRET not in text for text in raw)

    ckpts = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert ckpts
    for c in ckpts:
        (fid,) = c.model_extra["result_files"]
        meta = client.files.retrieve(fid)
        assert meta.filename == f"{job.id}-ckpt-step-{c.step_number}.tar" and meta.purpose == "fine-tune-results"
        with tarfile.open(fileobj=io.BytesIO(client.files.content(fid).read())) as tar:
            adapter = json.load(tar.extractfile(f"ckpt-step-{c.step_number}/adapter_config.json"))
        assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
        one = client.get(f"/fine_tuning/jobs/{job.id}/checkpoints/{c.id}", cast_to=httpx.Response).json()
        assert one["id"] == c.id and one["result_files"] == [fid] and one["step_number"] == c.step_number
    with pytest.raises(openai.NotFoundError):
        client.get(f"/fine_tuning/jobs/{job.id}/checkpoints/ftckpt-nope", cast_to=httpx.Response)


BAD_BODIES = [
    ({"hyperparameters": {"lora_r": 0}}, "hyperparameters.lora_r"),
    ({"hyperparameters": {"lora": "yes"}}, "hyperparameters.lora"),
    ({"hyperparameters": {"lora_dropout": 1.01}}, "hyperparameters.lora_dropout"),  # 1 itself trains
    ({"hyperparameters": {"warmup_ratio": 1.5}}, "hyperparameters.warmup_ratio"),
    ({"hyperparameters": {"packing": "sometimes"}}, "hyperparameters.packing"),
    (
        {"method": {"type": "supervised", "supervised": {"hyperparameters": {"context_length": 0}}}},
        "method.supervised.hyperparameters.context_length",
    ),
    ({"extra_body": {"colour": "blue"}}, "extra_body.colour"),
    ({"hyperparameters": {"n_epochs": 2}, "extra_body": {"n_epochs": 3}}, "extra_body.n_epochs"),
    ({"tags": [1, 2]}, "tags"),
    ({"integrations": [{"type": "wandb", "wandb": {"api_key": SECRET}}]}, "integrations[0].wandb.project"),
]


@pytest.mark.parametrize("change,param", BAD_BODIES)
def test_bad_nebius_bodies_are_400_and_create_nothing(client, change, param):
    body = {"model": "polytune-tiny", "training_file": _upload(client, 4), **change}
    before = _count_jobs(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/fine_tuning/jobs", body=body, cast_to=httpx.Response)
    assert e.value.body["param"].startswith(param), e.value.body
    assert SECRET not in json.dumps(e.value.body)
    assert _count_jobs(client) == before
