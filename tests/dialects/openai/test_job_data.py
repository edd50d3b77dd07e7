"""What validation tells a user about their data, through the official openai SDK: failures
with a code, param and line-level message (also in the events), long examples dropped or
truncated with an event naming the lines, and the tokens the job bills."""

from __future__ import annotations

import io
import json

import openai
import pytest

from tests.data.catalogue import OPENAI_PREF
from tests.helpers import chat_jsonl, wait_for

LONG = "many words here " * 40


def _upload(client, data: bytes, name: str = "train.jsonl"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose="fine-tune")


def _with_long_rows(n: int, long_lines: tuple[int, ...]) -> bytes:
    rows = [json.loads(r) for r in chat_jsonl(n).splitlines()]
    for line in long_lines:
        rows[line - 1]["messages"][1]["content"] = LONG
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def _settled(client, job_id: str):
    return wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job_id)).status != "validating_files" and j)


def _events(client, job_id: str):
    return list(client.fine_tuning.jobs.list_events(job_id, limit=100))


def _fails(client, training_file: str, **kwargs):
    job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=training_file, **kwargs)
    failed = _settled(client, job.id)
    assert failed.status == "failed"
    return failed, _events(client, job.id)


def test_a_preference_file_for_a_supervised_job(client):
    f = _upload(client, b"".join(json.dumps(OPENAI_PREF).encode() + b"\n" for _ in range(12)))
    assert f.status == "processed" and f.status_details == "12 examples in preference format, openai shape"
    failed, events = _fails(client, f.id)
    assert failed.error.code == "invalid_training_file" and failed.error.param == "training_file"
    assert "line 1 is a preference example (openai shape), but a supervised job needs chat" in failed.error.message
    assert any(e.level == "error" and failed.error.message in e.message for e in events)


def test_too_few_examples(client):
    failed, _ = _fails(client, _upload(client, chat_jsonl(5)).id)
    assert failed.error.code == "invalid_training_file"
    assert "The training data has 5 examples; at least 10 are needed." in failed.error.message


def test_a_bad_validation_file(client):
    train = _upload(client, chat_jsonl(12)).id
    mixed = _upload(client, chat_jsonl(4) + b'{"prompt": "p", "completion": "c"}\n')
    with pytest.raises(openai.BadRequestError) as e:  # known bad since its upload: nothing is created
        client.fine_tuning.jobs.create(model="polytune-tiny", training_file=train, validation_file=mixed.id)
    assert e.value.body["param"] == "validation_file"
    assert "line 5: expected a chat example like line 1, got a prompt/completion example" in e.value.body["message"]
    pref = _upload(client, json.dumps(OPENAI_PREF).encode() + b"\n")  # fine as a file, wrong for the method
    failed, _ = _fails(client, train, validation_file=pref.id)
    assert failed.error.code == "invalid_validation_file" and failed.error.param == "validation_file"
    assert "line 1 is a preference example (openai shape), but a supervised job needs" in failed.error.message


def test_upload_lists_twenty_problems_and_counts_the_rest(client):
    f = _upload(client, chat_jsonl(2) + b'{"messages": [{"role": "bot", "content": "x"}]}\n' * 25)
    assert f.status == "error"
    assert f.status_details.startswith("Invalid file: 50 problems found:\nline 3: messages[0].role:")
    assert f.status_details.count("\nline ") == 20 and f.status_details.endswith("... and 30 more")


def test_all_examples_too_long(client):
    failed, _ = _fails(
        client, _upload(client, _with_long_rows(12, tuple(range(1, 13)))).id, hyperparameters={"context_length": 64}
    )
    assert "Only 0 of the 12 training examples fit the context length of 64 tokens" in failed.error.message


def test_truncate_policy_reports_lines(client):
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=_upload(client, _with_long_rows(12, (2, 7))).id,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"context_length": 64, "long_examples": "truncate", "n_epochs": 2}},
        },
    )
    queued = _settled(client, job.id)
    client.fine_tuning.jobs.cancel(job.id)
    report = queued.model_extra["data_report"]
    (train,) = report["files"]
    assert (train["n_examples"], train["n_truncated"], train["truncated_lines"]) == (12, 2, [2, 7])
    assert report["billable_tokens"] == 2 * report["training_tokens"] == queued.trained_tokens
    assert any(
        e.level == "warn"
        and e.message.startswith("Truncated 2 training examples to the context length of 64 tokens: lines 2, 7.")
        for e in _events(client, job.id)
    )


@pytest.mark.slow
def test_long_examples_are_dropped_and_the_tokens_billed_are_the_tokens_trained(client):
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=_upload(client, _with_long_rows(12, (3, 9))).id,
        hyperparameters={"context_length": 64, "n_epochs": 2, "batch_size": 4},
    )
    queued = _settled(client, job.id)
    assert queued.status in ("queued", "running"), queued.error
    report = queued.model_extra["data_report"]
    (train,) = report["files"]
    assert (train["n_lines"], train["n_examples"], train["n_dropped"], train["dropped_lines"]) == (12, 10, 2, [3, 9])
    assert report["long_examples"] == "drop" and report["context_length"] == 64
    assert queued.trained_tokens == report["billable_tokens"] == 2 * report["training_tokens"] > 0
    done = wait_for(
        lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled") and j,
        timeout=240,
    )
    assert done.status == "succeeded", done.error
    events = _events(client, job.id)
    dropped = [e for e in events if e.message.startswith("Dropped 2 training examples")]
    assert dropped and dropped[0].level == "warn" and "lines 3, 9." in dropped[0].message
    finished = next(e for e in events if e.message.startswith("Training finished"))
    # What validation counted is exactly what the trainer fed the model.
    assert finished.data["input_tokens_seen"] == done.trained_tokens
    assert "20 steps" not in finished.message and "6 steps" in finished.message  # 10 examples, batch 4, 2 epochs
