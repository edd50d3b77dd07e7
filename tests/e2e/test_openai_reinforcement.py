"""Reinforcement fine-tuning (GRPO) through the official openai SDK against a live server: the
grader (string_check on the row's answer) is the reward, and the tiny model learns it — the
mean reward of the last quarter of steps beats the first quarter, with a fixed seed."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.helpers import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
TERMINAL = ("succeeded", "failed", "cancelled")
# The answer the grader looks for: a token the random tiny model writes now and then (so
# GRPO's groups have something to compare from the first step), not in every completion.
ANSWER = "7"
GRADER = {
    "type": "string_check",
    "name": "answer",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "operation": "like",
}


def _prompts(n: int) -> bytes:
    rows = [
        {"messages": [{"role": "user", "content": f"Question {i}: what is the magic number?"}], "answer": ANSWER}
        for i in range(n)
    ]
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


def test_reinforcement_job_raises_the_reward(client):
    train = client.files.create(file=("rl.jsonl", io.BytesIO(_prompts(12))), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=train,
        seed=3,
        suffix="rl",
        method={
            "type": "reinforcement",
            "reinforcement": {
                "grader": GRADER,
                "hyperparameters": {
                    "n_epochs": 3,
                    "batch_size": 2,
                    "compute_multiplier": 2,
                    "learning_rate_multiplier": 3.4,
                    "reasoning_effort": "low",
                    "max_completion_tokens": 8,
                },
            },
        },
    )
    assert job.method.type == "reinforcement" and job.method.reinforcement.grader.reference == "{{item.answer}}"
    done = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in TERMINAL and j, 420)
    assert done.status == "succeeded", done.error
    hp = done.method.reinforcement.hyperparameters
    assert (hp.compute_multiplier, hp.batch_size, hp.n_epochs, hp.reasoning_effort) == (2, 2, 3, "low")

    events = list(client.fine_tuning.jobs.list_events(job.id, limit=200))
    steps = sorted(
        (e.data for e in events if e.type == "metrics" and "reward" in (e.data or {})), key=lambda d: d["step"]
    )
    assert len(steps) == 18  # 12 prompts / 2 per step × 3 epochs
    for d in steps:
        assert {"reward", "reward_min", "reward_max", "kl", "completion_length", "sub_reward_answer"} <= set(d)
        assert d["reward_min"] <= d["reward"] <= d["reward_max"]
    quarter = len(steps) // 4
    first = sum(d["reward"] for d in steps[:quarter]) / quarter
    last = sum(d["reward"] for d in steps[-quarter:]) / quarter
    assert last > first, [round(d["reward"], 3) for d in steps]

    results = client.files.content(done.result_files[0]).text
    rows = list(csv.DictReader(io.StringIO(results)))
    assert len(rows) == 18 and {"reward", "reward_min", "reward_max", "kl", "sub_reward_answer"} <= set(rows[0])
    assert float(rows[-1]["reward"]) == pytest.approx(steps[-1]["reward"])
