"""Evals of models polytune serves, through the openai SDK against the live server: a
`completions` run samples a model over an uploaded file of purpose `evals` in batches through
the scheduler's eval runner, a running run is canceled, and an eval of the base model against
a model fine-tuned on the demo's facts shows what the fine-tune learned."""

from __future__ import annotations

import io
import json
from importlib import resources

import pytest
from openai import OpenAI

from tests.helpers import wait_done, wait_for
from tests.helpers import EXACT_GRADER as EXACT

pytestmark = [
    pytest.mark.sqlite_only,
    pytest.mark.filterwarnings("ignore:The Evals API is deprecated:DeprecationWarning"),
]
SYSTEM = "Answer questions about Veloria in a few words."
CONFIG = {
    "type": "custom",
    "include_sample_schema": True,
    "item_schema": {
        "type": "object",
        "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
        "required": ["question", "answer"],
    },
}
TEMPLATE = {
    "type": "template",
    "template": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "{{item.question}}"}],
}
ENDED = ("completed", "failed", "canceled")


def demo_items() -> list[dict]:
    """The demo's questions and answers (src/polytune/examples/qa.jsonl) as eval items."""
    text = resources.files("polytune.examples").joinpath("qa.jsonl").read_text()
    rows = [json.loads(line)["messages"] for line in text.splitlines() if line.strip()]
    return [{"item": {"question": m[1]["content"], "answer": m[2]["content"]}} for m in rows]


def _upload_items(client: OpenAI, items: list[dict]) -> str:
    data = "\n".join(json.dumps(i) for i in items).encode() + b"\n"
    return client.files.create(file=("qa-eval.jsonl", io.BytesIO(data)), purpose="evals").id


def _run(client: OpenAI, eval_id: str, model: str, file_id: str, **sampling):
    return client.evals.runs.create(
        eval_id,
        name=f"{model}",
        data_source={
            "type": "completions",
            "model": model,
            "source": {"type": "file_id", "id": file_id},
            "input_messages": TEMPLATE,
            "sampling_params": {"temperature": 0, "max_completion_tokens": 24, **sampling},
        },
    )


def _finished(client: OpenAI, eval_id: str, run_id: str, timeout: float = 300):
    return wait_for(
        lambda: (r := client.evals.runs.retrieve(run_id, eval_id=eval_id)).status in ENDED and r,
        timeout=timeout,
        interval=0.5,
    )


def test_a_completions_run_samples_the_base_model_from_an_evals_file(client, client_b):
    ev = client.evals.create(name="veloria", data_source_config=CONFIG, testing_criteria=[EXACT])
    items = demo_items()[:6]
    run = _run(client, ev.id, "polytune-tiny", _upload_items(client, items))
    assert run.status in ("queued", "in_progress") and run.model == "polytune-tiny"
    done = _finished(client, ev.id, run.id)
    assert done.status == "completed", done.error
    assert done.result_counts.total == 6 and done.result_counts.errored == 0
    (usage,) = done.per_model_usage
    assert usage.run_model_name == "polytune-tiny" and usage.invocation_count == 6
    assert usage.completion_tokens > 0 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    outputs = list(client.evals.runs.output_items.list(run.id, eval_id=ev.id))
    assert len(outputs) == 6
    first = client.evals.runs.output_items.retrieve(outputs[0].id, eval_id=ev.id, run_id=run.id)
    assert [m.content for m in first.sample.input] == [SYSTEM, items[0]["item"]["question"]]
    assert first.sample.model == "polytune-tiny" and first.sample.temperature == 0
    assert first.sample.usage.completion_tokens <= 24 and first.sample.output[0].role == "assistant"
    assert first.results[0].name == "exact" and first.results[0].passed == (first.status == "pass")
    # The other organization can use none of it, nor the file.
    assert list(client_b.evals.list()) == []


def test_a_running_run_is_canceled_between_batches(client):
    ev = client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT])
    many = [{"item": {"question": f"Tell me a long story number {i}.", "answer": "x"}} for i in range(96)]
    run = _run(client, ev.id, "polytune-tiny", _upload_items(client, many), temperature=1.0, max_completion_tokens=200)
    wait_for(lambda: client.evals.runs.retrieve(run.id, eval_id=ev.id).status == "in_progress", timeout=120)
    assert client.evals.runs.cancel(run.id, eval_id=ev.id).status == "canceled"
    done = _finished(client, ev.id, run.id)
    assert done.status == "canceled"
    # It stopped: not every item was sampled, and it stays as it is.
    written = len(list(client.evals.runs.output_items.list(run.id, eval_id=ev.id, limit=100)))
    assert written < 96
    assert client.evals.runs.retrieve(run.id, eval_id=ev.id).status == "canceled"


@pytest.mark.slow
def test_an_eval_of_base_and_fine_tuned_models_shows_what_the_fine_tune_learned(client):
    """The demo's fine-tune (auto hyperparameters on qa.jsonl), evaluated on the demo's questions:
    the base model by a run of its own, the fine-tuned one by the run the job asked for
    (polytune_eval), whose result is an event of the job."""
    ev = client.evals.create(name="veloria facts", data_source_config=CONFIG, testing_criteria=[EXACT])
    file_id = _upload_items(client, demo_items())
    data = resources.files("polytune.examples").joinpath("qa.jsonl").read_bytes()
    training = client.files.create(file=("qa.jsonl", io.BytesIO(data)), purpose="fine-tune")
    after = {
        "eval_id": ev.id,
        "data_source": {
            "type": "completions",
            "source": {"type": "file_id", "id": file_id},
            "input_messages": TEMPLATE,
            "sampling_params": {"temperature": 0, "max_completion_tokens": 24},
        },
    }
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=training.id, suffix="facts", seed=7, extra_body={"polytune_eval": after}
    )
    base = _run(client, ev.id, "polytune-tiny", file_id)
    job = wait_done(client, job.id, timeout=900)
    assert job.status == "succeeded", job.error
    tuned = wait_for(
        lambda: [
            r
            for r in client.evals.runs.list(ev.id)
            if r.metadata and r.metadata.get("fine_tuning_job_id") == job.id and r.model
        ],
        timeout=60,
    )[0]
    assert tuned.model == job.fine_tuned_model
    rates = {}
    for run in (base, tuned):
        done = _finished(client, ev.id, run.id)
        assert done.status == "completed", done.error
        counts = done.result_counts
        rates[run.model] = counts.passed / counts.total
    assert rates["polytune-tiny"] <= 0.2, rates
    assert rates[job.fine_tuned_model] >= 0.8, rates
    (event,) = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.message.startswith("Eval ")]
    assert event.data["run_id"] == tuned.id and event.data["pass_rate"] == rates[job.fine_tuned_model]
