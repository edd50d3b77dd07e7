"""Edges of starting a job from a checkpoint (its `model` a `tinker://` state or an `ft:` LoRA
model), each through the official client of the API it concerns:

- a job that brings `polytune_eval` is created (its eval checked with the catalog model the job
  trains on standing in) and its runs sample the fine-tuned result and its checkpoints;
- seekrai with `lora_config` checks the model against `/v1/flow/models` before sending: the
  organization's LoRA models pass it; a Tinker training state (not a served model) does not;
- a reinforcement job from a checkpoint is a clear 400 naming `model` in every dialect that has
  reinforcement."""

from __future__ import annotations

import io

import pytest

from tests.dialects.oxen.support import QA_CSV, http, put_file
from tests.dialects.tinker.test_from_checkpoint import _openai, taught  # noqa: F401  (a module fixture)
from tests.helpers import chat_jsonl, wait_done, wait_for
from tests.helpers import EXACT_GRADER as EXACT, QA_SCHEMA as SCHEMA

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SOURCE = {"type": "file_content", "content": [{"item": {"question": "capital of Zorbia?", "answer": "Quillon."}}]}
DATA_SOURCE = {
    "type": "completions",
    "source": SOURCE,
    "input_messages": {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]},
    "sampling_params": {"temperature": 0, "max_completion_tokens": 4},
}
GRADER = {
    "type": "string_check",
    "name": "exact",
    "input": "{{sample.output_text}}",
    "reference": "4",
    "operation": "eq",
}


@pytest.fixture(scope="module")
def eval_id(tinker_server) -> str:
    client = _openai(tinker_server, tinker_server.key_a)
    ev = client.evals.create(
        data_source_config={"type": "custom", "item_schema": SCHEMA, "include_sample_schema": True},
        testing_criteria=[EXACT],
    )
    return ev.id


def _runs_of(client, eval_id: str, job_id: str) -> list:
    return [
        r for r in client.evals.runs.list(eval_id, limit=100).data if r.metadata.get("fine_tuning_job_id") == job_id
    ]


def test_a_job_from_a_tinker_state_brings_an_eval(taught, eval_id, tinker_server):  # noqa: F811
    client = _openai(tinker_server, tinker_server.key_a)
    file = client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=taught[0],
        training_file=file.id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}},
        extra_body={"polytune_eval": {"eval_id": eval_id, "data_source": DATA_SOURCE, "checkpoints": True}},
    )
    assert job.model == taught[0]
    waiting = _runs_of(client, eval_id, job.id)
    assert [(r.status, r.data_source.model) for r in waiting] == [("queued", None)]
    done = wait_done(client, job.id)
    assert done.status == "succeeded", done.error
    checkpoints = {c.fine_tuned_model_checkpoint for c in client.fine_tuning.jobs.checkpoints.list(job.id).data}
    assert checkpoints, "a 2-epoch job saves a checkpoint per epoch"

    def finished():
        runs = _runs_of(client, eval_id, job.id)
        return len(runs) == 1 + len(checkpoints) and all(r.status in ("completed", "failed", "canceled") for r in runs)

    wait_for(finished, 180)
    runs = _runs_of(client, eval_id, job.id)
    assert all(r.status == "completed" and r.result_counts.total == 1 for r in runs), runs
    # The fine-tuned result and each checkpoint are sampled, never the checkpoint the job started from.
    assert {r.model for r in runs} == {done.fine_tuned_model, *checkpoints}
    events = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert any(m.startswith("Eval ") and done.fine_tuned_model in m for m in events), events


def test_every_dialect_takes_an_eval_with_a_checkpoint_as_the_model(taught, eval_id, tinker_server):  # noqa: F811
    """SeekrFlow's training_config.polytune_eval and Oxen's training_params.polytune_eval with a
    Tinker state as the model: created (the job is cancelled at once; the run waits for it)."""
    after = {"eval_id": eval_id, "data_source": DATA_SOURCE}
    with http(tinker_server, tinker_server.key_a) as c:
        train = c.post("/v1/files", files={"file": ("t.jsonl", chat_jsonl(12))}, data={"purpose": "fine-tune"})
        config = {"training_files": [train.json()["id"]], "model": taught[0], "n_epochs": 1, "polytune_eval": after}
        infra = {"accel_type": "A100", "n_accel": 1}
        made = c.post("/v1/flow/fine-tunes", json={"training_config": config, "infrastructure_config": infra})
        assert made.status_code == 200, made.text
        assert c.put(f"/v1/flow/fine-tunes/{made.json()['id']}/cancel").status_code == 200

        assert c.post("/api/repos", json={"namespace": "ada", "name": "evals"}).status_code == 200
        put_file(c, "ada/evals", "qa.csv", QA_CSV.encode())
        body = {
            "resource": "main/qa.csv",
            "base_model": taught[0],
            "script_type": "text_generation",
            "training_params": {"epochs": 1, "polytune_eval": after},
        }
        created = c.post("/api/repos/ada/evals/fine_tunes", json=body)
        assert created.status_code == 201, created.text
    client = _openai(tinker_server, tinker_server.key_a)
    # Oxen's job waits in `created` (never started here): its run waits with it, with no model yet.
    assert [(r.status, r.model) for r in _runs_of(client, eval_id, created.json()["fine_tune"]["id"])] == [
        ("queued", "")
    ]
    # SeekrFlow's job was cancelled: its run is cancelled by the next scheduler pass, saying why.
    cancelled = wait_for(
        lambda: (r := _runs_of(client, eval_id, made.json()["id"])) and r[0].status != "queued" and r, 60
    )
    assert [(r.status, r.error.code) for r in cancelled] == [("canceled", "fine_tuning_job_cancelled")]


def test_an_unknown_checkpoint_with_an_eval_is_a_404_naming_the_model(eval_id, tinker_server):
    import openai

    client = _openai(tinker_server, tinker_server.key_a)
    file = client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    with pytest.raises(openai.NotFoundError) as refused:
        client.fine_tuning.jobs.create(
            model="tinker://ftjob-nothing/weights/none",
            training_file=file.id,
            extra_body={"polytune_eval": {"eval_id": eval_id, "data_source": DATA_SOURCE}},
        )
    assert refused.value.body["param"] == "model"


@pytest.fixture(scope="module")
def ft_lora(taught, tinker_server):  # noqa: F811
    """A LoRA job's model (`ft:...`), trained from the Tinker state: one epoch, batch 4."""
    client = _openai(tinker_server, tinker_server.key_a)
    file = client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=taught[0],
        training_file=file.id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}},
    )
    done = wait_done(client, job.id)
    assert done.status == "succeeded", done.error
    return done.fine_tuned_model


def test_seekrai_lora_config_from_an_organizations_lora_model(taught, ft_lora, tinker_server, tmp_path):  # noqa: F811
    """The SDK asks /v1/flow/models first: a LoRA model of the organization is listed there with
    supports_lora (a LoRA job trains its adapter further); a Tinker training state is no model
    there, so the SDK refuses it before sending (docs/tinker.md: its workarounds)."""
    from seekrai import SeekrFlow
    from seekrai.error import InvalidRequestError
    from seekrai.types import InfrastructureConfig, LoRAConfig, TrainingConfig

    seekr = SeekrFlow(api_key=tinker_server.key_a, base_url=tinker_server.url)
    listed = {m.id: m for m in seekr.models.list().data}  # strict parsing of the listing still holds
    assert ft_lora in listed
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(10))
    train_file = seekr.files.upload(path, purpose="fine-tune").id
    project = seekr.projects.create(name="LoRA from a checkpoint", description="starts").id

    def create(model: str):
        return seekr.fine_tuning.create(
            project_id=project,
            training_config=TrainingConfig(
                training_files=[train_file], model=model, n_epochs=1, lora_config=LoRAConfig(r=4, alpha=8)
            ),
            infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
        )

    job = create(ft_lora)
    assert job.model == ft_lora
    seekr.fine_tuning.cancel(job.id)
    with pytest.raises(InvalidRequestError, match="not found; cannot enable LoRA"):
        create(taught[0])
    # The server itself takes the state with lora_config (what the SDK would send, over HTTP).
    with http(tinker_server, tinker_server.key_a) as c:
        config = {"training_files": [train_file], "model": taught[0], "n_epochs": 1, "lora_config": {"r": 4}}
        made = c.post(
            "/v1/flow/fine-tunes",
            json={"training_config": config, "infrastructure_config": {"accel_type": "A100", "n_accel": 1}},
        )
        assert made.status_code == 200, made.text
        assert c.put(f"/v1/flow/fine-tunes/{made.json()['id']}/cancel").status_code == 200


def test_a_reinforcement_job_from_a_checkpoint_is_a_400_naming_model(taught, ft_lora, tinker_server, tmp_path):  # noqa: F811
    import openai
    from seekrai import SeekrFlow
    from seekrai.error import SeekrFlowException
    from seekrai.types import InfrastructureConfig, TrainingConfig

    rows = "".join(f'{{"messages": [{{"role": "user", "content": "{i}+1?"}}], "answer": "4"}}\n' for i in range(12))
    method = {"type": "reinforcement", "reinforcement": {"grader": GRADER}}
    for base_url in (f"{tinker_server.url}/v1", f"{tinker_server.url}/api/llm"):  # OpenAI, Nebius; TrueFoundry
        client = openai.OpenAI(base_url=base_url, api_key=tinker_server.key_a, max_retries=0)
        file = client.files.create(file=("rl.jsonl", io.BytesIO(rows.encode())), purpose="fine-tune")
        for model in (taught[0], ft_lora):
            with pytest.raises(openai.BadRequestError, match="reinforcement job cannot start from a checkpoint") as e:
                client.fine_tuning.jobs.create(model=model, training_file=file.id, method=method)
            assert e.value.body["param"] == "model" and model in e.value.body["message"]

    seekr = SeekrFlow(api_key=tinker_server.key_a, base_url=tinker_server.url)
    path = tmp_path / "rl.jsonl"
    path.write_text(rows.replace('"answer"', '"reference_answer"'))
    train_file = seekr.files.upload(path, purpose="reinforcement-fine-tune").id
    project = seekr.projects.create(name="GRPO from a checkpoint", description="refused").id
    for model in (taught[0], ft_lora):
        # SeekrFlow's shape for a refused field (a 422 naming it), which the SDK raises as an APIError.
        with pytest.raises(SeekrFlowException, match="reinforcement job cannot start from a checkpoint") as e:
            seekr.fine_tuning.create(
                project_id=project,
                training_config=TrainingConfig(
                    training_files=[train_file], model=model, n_epochs=1, fine_tune_type="GRPO"
                ),
                infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
            )
        assert e.value.http_status == 422 and model in str(e.value)
        assert '"loc":["body","training_config","model"]' in str(e.value), e.value
    assert [j.fine_tune_type.value for j in seekr.fine_tuning.list().data if j.fine_tune_type.value == "GRPO"] == []
