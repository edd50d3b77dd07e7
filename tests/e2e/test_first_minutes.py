"""The first five minutes, as the README shows them: 10 examples and `auto` epochs, which gives a
small set the epochs it needs. A job too short to fit its data still succeeds, but its last
event before success says so, and what to try."""

from __future__ import annotations

import io
from importlib import resources

import pytest
from openai import OpenAI

from tests.helpers import wait_done, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]
NOT_FITTED = "has not fitted its training data"


@pytest.fixture(scope="module")
def ten_examples(server) -> tuple[str, list[dict]]:
    import json

    lines = resources.files("polytune.examples").joinpath("qa.jsonl").read_text().splitlines()[:10]
    client = OpenAI(base_url=f"{server.url}/v1", api_key=server.key_a, max_retries=0)
    f = client.files.create(file=("train.jsonl", io.BytesIO("\n".join(lines).encode() + b"\n")), purpose="fine-tune")
    return f.id, [json.loads(line)["messages"] for line in lines]


def _events(client: OpenAI, job_id: str) -> list:
    return list(reversed(client.fine_tuning.jobs.list_events(job_id, limit=100).data))


def test_the_readme_example_gets_enough_epochs_for_ten_examples(client, ten_examples):
    file_id, _ = ten_examples
    # As the README's Python example creates it: no hyperparameters, every one `auto`. Training
    # it to the end takes 1000 steps (minutes on two CPU cores): the test reads what auto chose
    # (the catalog's measured minimum for polytune-tiny, each example seen ~100 times), not 3.
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=file_id, suffix="mine", method={"type": "supervised"}
    )
    resolved = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status != "validating_files" and j)
    client.fine_tuning.jobs.cancel(job.id)
    assert resolved.method.supervised.hyperparameters.n_epochs == 100, resolved.error


def test_a_job_that_did_not_fit_says_so_and_what_to_try(client, ten_examples):
    file_id, _ = ten_examples
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=file_id,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 1, "learning_rate_multiplier": 0.1}},
        },
    )
    job = wait_done(client, job.id, timeout=600)
    assert job.status == "succeeded", job.error
    events = _events(client, job.id)
    (warning,) = [e for e in events if NOT_FITTED in e.message]
    assert warning.level == "warn"
    assert (
        "n_epochs was 1" in warning.message
        and "learning_rate_multiplier (was 0.1, a learning rate of 0.0003)" in warning.message
    )
    # The last word before the job's success.
    assert events.index(warning) == len(events) - 2 and "successfully completed" in events[-1].message
