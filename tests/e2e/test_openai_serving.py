"""Fine-tuned models served the moment they exist, through the official openai SDK: a full
fine-tune and its checkpoints answer with their training, two LoRA fine-tunes of one base
answer concurrently each with its own, `polytune chat` streams, and a deleted model is gone."""

from __future__ import annotations

import io
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from tests.conftest import BIN
from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
FULL_ANSWER = "The answer is blue."
LORA_ANSWERS = {"yes": "Yes", "no": "No"}
QUESTION = [{"role": "user", "content": "Question number 3?"}]


def _data(answer: str) -> bytes:
    rows = [
        {"messages": [{"role": "user", "content": f"Question number {i}?"}, {"role": "assistant", "content": answer}]}
        for i in range(12)
    ]
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


def _start(client: OpenAI, answer: str, suffix: str, hyperparameters: dict) -> str:
    f = client.files.create(file=(f"{suffix}.jsonl", io.BytesIO(_data(answer))), purpose="fine-tune")
    return client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=f.id, suffix=suffix, seed=7, hyperparameters=hyperparameters
    ).id


@pytest.fixture(scope="module")
def jobs(server):
    """Three fine-tunes of polytune-tiny, started together: a full one with checkpoints, and two
    LoRA ones that learn to answer "Yes." and "No." to everything."""
    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.key_a, max_retries=0)
    constant = {"batch_size": 4, "lr_scheduler": "constant"}
    ids = {
        "full": _start(
            client,
            FULL_ANSWER,
            "full",
            {**constant, "n_epochs": 3, "learning_rate": 3e-3, "lora": False, "n_checkpoints": 2},
        ),
        **{
            name: _start(
                client,
                f"{word}.",
                name,
                {**constant, "n_epochs": 6, "learning_rate": 1e-2, "lora": True, "lora_alpha": 128, "n_checkpoints": 0},
            )
            for name, word in LORA_ANSWERS.items()
        },
    }
    done = {
        name: wait_for(
            lambda j=job_id: (
                (r := client.fine_tuning.jobs.retrieve(j)).status in ("succeeded", "failed", "cancelled") and r
            ),
            timeout=600,
        )
        for name, job_id in ids.items()
    }
    for name, job in done.items():
        assert job.status == "succeeded", (name, job.error)
    return done


def _ask(client: OpenAI, model: str, *, stream: bool = False, messages=QUESTION) -> str:
    if not stream:
        return (
            client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=16)
            .choices[0]
            .message.content
        )
    chunks = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=16, stream=True)
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def test_a_full_fine_tune_answers_with_its_training_then_is_deleted(server, client, client_b, jobs):
    job = jobs["full"]
    model = job.fine_tuned_model
    reply = client.chat.completions.create(model=model, messages=QUESTION, temperature=0, max_tokens=16)
    assert reply.model == model and reply.choices[0].message.content == FULL_ANSWER
    assert reply.choices[0].finish_reason == "stop"
    assert _ask(client, model, stream=True) == FULL_ANSWER
    assert _ask(client, model, messages=[{"role": "user", "content": "Question number 40?"}]) == FULL_ANSWER
    assert _ask(client, "polytune-tiny") != FULL_ANSWER
    # The raw prompt, rendered the way the chat template renders it, gives the same answer.
    prompt = "<|im_start|>user\nQuestion number 3?<|im_end|>\n<|im_start|>assistant\n"
    assert (
        client.completions.create(model=model, prompt=prompt, temperature=0, max_tokens=16).choices[0].text
        == FULL_ANSWER
    )

    # Every checkpoint is a model too.
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert len(checkpoints) == 2
    for ckpt in checkpoints:
        out = client.chat.completions.create(
            model=ckpt.fine_tuned_model_checkpoint, messages=QUESTION, temperature=0, max_tokens=16
        )
        assert out.model == ckpt.fine_tuned_model_checkpoint and out.choices[0].message.content

    # `polytune chat MODEL` streams the same answer.
    chat = subprocess.run(
        [
            str(BIN / "polytune"),
            "chat",
            model,
            "--base-url",
            f"{server.url}/v1",
            "--api-key",
            server.key_a,
            "--temperature",
            "0",
        ],
        input="Question number 3?\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=server.env,
    )
    assert chat.returncode == 0, chat.stderr
    assert chat.stdout.strip() == FULL_ANSWER

    # Another organization can neither use nor delete it.
    with pytest.raises(openai.NotFoundError):
        client_b.chat.completions.create(model=model, messages=QUESTION)
    with pytest.raises(openai.NotFoundError):
        client_b.models.delete(model)

    deleted = client.models.delete(model)
    assert deleted.id == model and deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model=model, messages=QUESTION)
    assert e.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(model)
    assert model not in {m.id for m in client.models.list().data}
    assert not (Path(server.tmp) / "data" / "blobs" / "models" / job.id / "final").exists()
    # The job keeps its history, and its checkpoints still serve.
    assert client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model == model
    assert _ask(client, checkpoints[0].fine_tuned_model_checkpoint)


def test_two_lora_fine_tunes_of_one_base_serve_concurrently(client, jobs):
    models = {name: jobs[name].fine_tuned_model for name in LORA_ANSWERS}
    alone = {name: _ask(client, model) for name, model in models.items()}
    base = _ask(client, "polytune-tiny")
    for name, word in LORA_ANSWERS.items():
        assert alone[name].startswith(word), (name, alone[name])
        assert not base.startswith(word)

    # Eight requests at once, alternating adapters and streaming or not: each gets its own answer.
    plan = [(name, i % 4 < 2) for i in range(4) for name in LORA_ANSWERS]
    with ThreadPoolExecutor(len(plan)) as pool:
        replies = list(pool.map(lambda p: _ask(client, models[p[0]], stream=p[1]), plan))
    for (name, _), reply in zip(plan, replies):
        assert reply == alone[name], name
