"""SeekrFlow fine-tunes through the `seekrai` SDK: create (sync and async paths) with and
without LoRA, list, retrieve, cancel (PUT and POST), events, promote/demote; a real tiny
training to `completed`; bad bodies; jobs read across the Seekr and OpenAI APIs."""

from __future__ import annotations

import asyncio
import io

import httpx
import pytest

from tests.helpers import chat_jsonl, wait_for

seekrai = pytest.importorskip("seekrai", reason="`make venv` installs it into .venv-clients")
from seekrai.error import InvalidRequestError  # noqa: E402
from seekrai.types import InfrastructureConfig, LoRAConfig, TrainingConfig  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SEEKR_STATUSES = {"pending", "queued", "running", "completed", "failed", "cancelled", "deleted"}


@pytest.fixture
def project(seekr) -> int:
    return seekr.projects.create(name="Tiny fine-tunes", description="Tests of the Seekr dialect").id


def _count(seekr) -> int:
    return len(seekr.fine_tuning.list().data)


@pytest.mark.slow
def test_lora_training_runs_to_completed_and_reads_through_openai(server, seekr, client, train_file, project):
    # The local executor trains any request on this machine; the Ray test cluster (4 CPUs, no
    # GPU) takes one CPU worker per accelerator: one here (tests/executors/test_ray.py has more).
    n_accel = 8 if server.executor == "local" else 1
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[train_file],
            model="polytune-tiny",
            n_epochs=2,
            batch_size=5,
            learning_rate=3e-3,
            n_checkpoints=1,
            experiment_name="lora-run",
            max_length=512,
            lora_config=LoRAConfig(r=8, alpha=16, dropout=0.0),
        ),
        infrastructure_config=InfrastructureConfig(accel_type="H100", n_accel=n_accel, n_node=1),
    )
    assert job.status.value == "pending" and job.accel_type.value == "H100" and job.n_accel == n_accel
    assert job.project_id == project and job.lora_config.r == 8 and job.experiment_name == "lora-run"
    with pytest.raises(InvalidRequestError):
        seekr.fine_tuning.promote(job.id)  # no model yet

    seen = set()

    def finished():
        j = seekr.fine_tuning.retrieve(job.id)
        seen.add(j.status.value)
        return j.status.value in ("completed", "failed", "cancelled") and j

    done = wait_for(finished, 240)
    assert done.status.value == "completed", done.error_analysis
    assert seen <= SEEKR_STATUSES and done.inference_available and done.completed_at
    assert done.n_epochs == 2 and done.batch_size == 5 and done.learning_rate == 3e-3

    events = seekr.fine_tuning.list_events(job.id).data
    losses = [e for e in events if e.loss is not None]
    assert len(losses) == 4 and [e.epoch for e in losses] == [0.5, 1.0, 1.5, 2.0]
    if server.executor == "local":
        (infra,) = [e for e in events if "Requested 1 node(s) with 8 x H100" in e.model_extra["message"]]
        assert "local executor runs this job on what this machine has" in infra.model_extra["message"]
    else:
        (infra,) = [e for e in events if "The Ray cluster has no accelerators" in e.model_extra["message"]]
        assert "1 CPU worker(s), one per requested accelerator (1 x H100" in infra.model_extra["message"]

    promoted = seekr.fine_tuning.promote(job.id).data
    assert "promoted" in promoted[0].model_extra["message"]
    assert "demoted" in seekr.fine_tuning.demote(job.id).data[0].model_extra["message"]
    runs = {p.id: p for p in seekr.projects.list().data}[project]
    assert runs.runs == 1 and runs.runs_deployed == 1

    # The same job through the OpenAI API, strictly parsed.
    same = client.fine_tuning.jobs.retrieve(job.id)
    assert same.status == "succeeded" and same.fine_tuned_model == done.model_extra["fine_tuned_model"]
    assert same.training_file == train_file and same.hyperparameters.to_dict()["lora_r"] == 8
    assert client.models.retrieve(same.fine_tuned_model).id == same.fine_tuned_model
    assert same.fine_tuned_model in {m.id for m in seekr.models.list().data}


def test_create_without_lora_list_retrieve_cancel_put(seekr, train_file, project):
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(training_files=[train_file], model="polytune-tiny", n_epochs=50),
        infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
    )
    assert job.lora_config is None and job.fine_tune_type.value == "STANDARD" and job.batch_size is None
    assert job.id in {j.id for j in seekr.fine_tuning.list().data}
    assert seekr.fine_tuning.retrieve(job.id).training_files == [train_file]
    cancelled = seekr.fine_tuning.cancel(job.id)  # sync client: PUT
    assert cancelled.status.value == "cancelled"
    events = seekr.fine_tuning.list_events(job.id).data
    assert all(e.object.value == "fine-tune-event" for e in events)
    assert any("cancelled" in e.model_extra["message"] for e in events)
    assert seekr.fine_tuning.cancel(job.id).status.value == "cancelled"  # idempotent, never a 5xx


def test_async_client_creates_with_lora_and_cancels_with_post(server, seekr_async, train_file, project):
    # Two nodes: what the one-node Ray test cluster can never hold (refused: test_ray.py).
    n_node = 2 if server.executor == "local" else 1

    async def go():
        job = await seekr_async.fine_tuning.create(  # POST /v1/flow/fine-tunes, after GET models
            project_id=project,
            training_config=TrainingConfig(
                training_files=[train_file], model="polytune-tiny", n_epochs=50, lora_config=LoRAConfig()
            ),
            infrastructure_config=InfrastructureConfig(accel_type="MI300X", n_accel=2, n_node=n_node),
        )
        cancelled = await seekr_async.fine_tuning.cancel(job.id)  # async client: POST
        return job, cancelled, await seekr_async.fine_tuning.retrieve(job.id)

    job, cancelled, again = asyncio.run(go())
    assert job.lora_config.r == 8 and job.lora_config.alpha == 32 and job.n_node == n_node
    assert cancelled.status.value == again.status.value == "cancelled"


def test_openai_job_reads_through_seekr(client, seekr):
    fid = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(10))), purpose="fine-tune").id
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=fid, suffix="x", hyperparameters={"n_epochs": 3, "lora": True, "lora_r": 4}
    )
    client.fine_tuning.jobs.cancel(job.id)
    seen = seekr.fine_tuning.retrieve(job.id)
    assert seen.status.value == "cancelled" and seen.fine_tune_type.value == "STANDARD"
    assert seen.accel_type.value == "A10" and seen.n_accel == 1  # asked for none; the SDK needs one
    assert seen.training_files == [fid] and seen.n_epochs == 3 and seen.lora_config.r == 4
    assert job.id in {j.id for j in seekr.fine_tuning.list().data}


def _body(train_file: str, **training) -> dict:
    return {
        "project_id": None,
        "training_config": {"training_files": [train_file], "model": "polytune-tiny", "n_epochs": 1, **training},
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
    }


BAD_BODIES = [
    (lambda f: {"training_config": _body(f)["training_config"]}, ["body", "infrastructure_config"]),
    (
        lambda f: {**_body(f), "infrastructure_config": {"accel_type": "TPU", "n_accel": 1}},
        ["body", "infrastructure_config", "accel_type"],
    ),
    (
        lambda f: {**_body(f), "infrastructure_config": {"accel_type": "A10", "n_accel": 0}},
        ["body", "infrastructure_config", "n_accel"],
    ),
    (lambda f: _body(f, batch_size=2048), ["body", "training_config", "batch_size"]),
    (lambda f: _body(f, n_epochs="many"), ["body", "training_config", "n_epochs"]),
    (lambda f: _body(f, lora_config={"r": 0}), ["body", "training_config", "lora_config", "r"]),
    (lambda f: _body(f, lora_config={"extras": {"target_modules": 7}}), ["body", "training_config", "lora_config"]),
    (lambda f: _body(f, beta=0.1), ["body", "training_config", "beta"]),
    (lambda f: _body(f, validation_files=[f, f]), ["body", "training_config", "validation_files"]),
    (lambda f: _body(f, model="no-such-model"), ["body", "training_config", "model"]),
    (lambda f: _body("file-nope"), ["body", "training_config", "training_files"]),
    (lambda f: _body(f, n_epochs=500), ["body", "training_config", "n_epochs"]),
    (lambda f: _body(f, lora_config={"dropout": 1.01}), ["body", "training_config", "lora_config", "dropout"]),
    (lambda f: _body(f, lora_config={"dropout": -0.01}), ["body", "training_config", "lora_config", "dropout"]),
    (lambda f: _body(f, max_length=0), ["body", "training_config", "max_length"]),
    (lambda f: {**_body(f), "colour": "blue"}, ["body", "colour"]),  # RequestConfig itself is closed
    (lambda f: {**_body(f), "project_id": 987654}, ["body", "project_id"]),
    # QLoRA (a polytune extension in lora_config.extras): the test servers have no accelerator.
    (
        lambda f: _body(f, lora_config={"extras": {"quantization": "nf4"}}),
        ["body", "training_config", "lora_config", "extras", "quantization"],
    ),
    (
        lambda f: _body(f, lora_config={"extras": {"quantization": "int3"}}),
        ["body", "training_config", "lora_config", "extras", "quantization"],
    ),
]


@pytest.mark.parametrize("make,loc", BAD_BODIES)
def test_bad_bodies_are_422_http_validation_errors_and_create_nothing(server, seekr, headers, train_file, make, loc):
    before = _count(seekr)
    for path in ("fine-tune", "fine-tunes"):
        r = httpx.post(f"{server.url}/v1/flow/{path}", json=make(train_file), headers=headers)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail[0]["loc"][: len(loc)] == loc and detail[0]["msg"] and detail[0]["type"], detail
    assert _count(seekr) == before


def test_malformed_json_and_unknown_job(server, seekr, headers):
    r = httpx.post(
        f"{server.url}/v1/flow/fine-tune",
        content=b'{"project_id": ',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    with pytest.raises(InvalidRequestError):
        seekr.fine_tuning.retrieve("ftjob-nope")
    r = httpx.get(f"{server.url}/v1/flow/fine-tunes/ftjob-nope/events", headers=headers)
    assert r.status_code == 404 and isinstance(r.json()["detail"], str)


@pytest.mark.parametrize("fine_tune_type", ["REINFORCEMENT", "GRPO"])
def test_reinforcement_reward_components_become_the_jobs_grader(
    server, seekr, client, headers, tmp_path, fine_tune_type
):
    path = tmp_path / "rl.jsonl"
    path.write_text(
        "".join(
            f'{{"messages": [{{"role": "user", "content": "What is {i} + 1?"}}], "reference_answer": "{i + 1}"}}\n'
            for i in range(10)
        )
    )
    train = seekr.files.upload(path, purpose="fine-tune").id
    components = {
        "format_reward_weight": 0.2,
        "graders": [
            {"type": "math_accuracy", "weight": 0.5},
            {"type": "string_check", "operation": "contains", "weight": 0.3},
        ],
    }
    r = httpx.post(
        f"{server.url}/v1/flow/fine-tune",
        headers=headers,
        json=_body(train, fine_tune_type=fine_tune_type, reward_components=components),
    )
    assert r.status_code == 200, r.text
    job = seekr.fine_tuning.retrieve(r.json()["id"])
    assert job.fine_tune_type.value == fine_tune_type  # GRPO reads back as sent
    assert r.json()["reward_components"] == components
    client.fine_tuning.jobs.cancel(job.id)
    # The same job through OpenAI's API: one weighted multi grader over the row's reference_answer.
    # (under polytune's own key: the SDK's types hold a multi over one grader only).
    method = client.fine_tuning.jobs.retrieve(job.id).method
    assert method.type == "reinforcement" and method.reinforcement is None
    grader = method.model_extra["polytune_reinforcement"]["grader"]
    assert grader["type"] == "multi" and set(grader["graders"]) == {"format", "math_accuracy_0", "string_check_1"}
    assert grader["calculate_output"] == "0.2 * format + 0.5 * math_accuracy_0 + 0.3 * string_check_1"
