"""Each provider's own request shape through the official openai SDK (issue 18): TrueFoundry's
document body exactly as shown (`method: {}`, `integrations: [{}]`, `metadata: {}`), OpenAI's
strictness (unknown keys beside the grader, hyperparameters given twice and disagreeing),
Nebius's `suffix` and the settings a job trained with, and every polytune status inside each
provider's enum with polytune's own kept in `polytune_status`."""

from __future__ import annotations

import io
import json

import httpx
import openai
import pytest
from openai.types.fine_tuning import FineTuningJob

from polytune.dialects.openai import render
from polytune.domain.job import Job, JobStatus
from polytune.domain.spec import JobSpec
from tests.helpers import chat_jsonl, wait_for

# The enums of the seed documents (../shared/seeds/*.md).
OPENAI_STATUSES = {"validating_files", "queued", "running", "succeeded", "failed", "cancelled"}
TRUEFOUNDRY_STATUSES = {"queued", "running", "succeeded", "failed", "cancelled"}
GRADER = {"type": "string_check", "name": "g", "input": "{{sample.output_text}}", "reference": "7", "operation": "eq"}


@pytest.fixture
def tfy(server):
    from openai import OpenAI

    return OpenAI(
        base_url=f"{server.url}/api/llm", api_key=server.key_a, max_retries=0, _strict_response_validation=True
    )


@pytest.fixture
def training_file(client):
    return client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id


def _count(client) -> int:
    return len(client.fine_tuning.jobs.list(limit=1000).data)


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_status_is_inside_each_providers_enum_and_parses_strictly(status):
    job = Job(
        id="ftjob-x", org_id="org-a", spec=JobSpec(model="m", training_files=["file-x"]), status=status, created_at=1
    )
    for flavor, enum in (("openai", OPENAI_STATUSES), ("truefoundry", TRUEFOUNDRY_STATUSES)):
        body = render.job(job, flavor)
        assert body["status"] in enum and body["polytune_status"] == status.value
        FineTuningJob.model_validate(body)  # the SDK's Literal: a value outside it fails here
    assert render.job(job, "truefoundry")["metadata"] == {}


def test_truefoundry_document_body_is_supervised_with_defaults(server, tfy, training_file):
    # The body of TrueFoundry's document, field for field, through raw HTTP as its curl sends it.
    body = {
        "model": "polytune-tiny",
        "training_file": training_file,
        "hyperparameters": {},
        "integrations": [{}],
        "metadata": {},
        "method": {},
        "seed": 123,
        "suffix": "tfy-doc",
        "validation_file": None,
    }
    r = httpx.post(
        f"{server.url}/api/llm/fine_tuning/jobs", json=body, headers={"Authorization": f"Bearer {server.key_a}"}
    )
    assert r.status_code == 200, r.text
    raw = r.json()
    assert raw["metadata"] == {} and raw["integrations"] is None and raw["status"] in TRUEFOUNDRY_STATUSES
    job = tfy.fine_tuning.jobs.retrieve(raw["id"])
    assert job.method.type == "supervised" and job.seed == 123 and job.metadata == {}
    assert tfy.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    # Through the SDK too, with the SDK's own types.
    made = tfy.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=training_file, method={}, integrations=[{}], metadata={}
    )
    assert made.method.type == "supervised" and made.status == "queued"  # no validating_files here
    assert made.model_extra["polytune_status"] == "validating_files"
    tfy.fine_tuning.jobs.cancel(made.id)


def test_half_filled_integration_and_untyped_method_are_refused(client, training_file):
    before = _count(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=training_file, integrations=[{"type": "wandb"}]
        )
    assert e.value.body["param"] == "integrations[0].wandb"
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=training_file, method={"dpo": {"hyperparameters": {"beta": 0.1}}}
        )
    assert e.value.body["param"] == "method.type"
    assert _count(client) == before


def test_unknown_keys_beside_the_grader_are_refused(client, training_file):
    before = _count(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=training_file,
            method={"type": "reinforcement", "reinforcement": {"grader": GRADER, "n_epochs": 2}},
        )
    assert e.value.body["param"] == "method.reinforcement.n_epochs"
    assert e.value.body["code"] == "unknown_parameter"
    assert _count(client) == before


def test_hyperparameters_given_twice_must_agree(client, training_file):
    before = _count(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=training_file,
            hyperparameters={"n_epochs": 2},
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        )
    assert e.value.body["param"] == "hyperparameters.n_epochs" and "method.supervised" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=training_file,
            hyperparameters={"batch_size": 2},
            method={"type": "reinforcement", "reinforcement": {"grader": GRADER, "hyperparameters": {"batch_size": 4}}},
        )
    assert e.value.body["param"] == "hyperparameters.batch_size"
    assert _count(client) == before
    # Agreeing (or complementary) values are one setting: both reach the job.
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=training_file,
        hyperparameters={"n_epochs": 2, "batch_size": 4},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    hp = job.method.supervised.hyperparameters
    assert (hp.n_epochs, hp.batch_size) == (2, 4)
    client.fine_tuning.jobs.cancel(job.id)


def test_nebius_full_fine_tune_echoes_suffix_and_the_settings_it_trains_with(client, training_file):
    created = client.fine_tuning.jobs.with_raw_response.create(
        model="polytune-tiny",
        training_file=training_file,
        suffix="neb-full",
        hyperparameters={"n_epochs": 1, "batch_size": 4, "lora": False, "learning_rate": 0.001},
        extra_body={"tags": "my-ft-job"},
    )
    job = created.parse()
    assert json.loads(created.text)["suffix"] == "neb-full" and job.model_extra["tags"] == ["my-ft-job"]
    # Once validated, "auto" and left-out settings are the values the trainer uses.
    queued = wait_for(
        lambda: (
            (j := client.fine_tuning.jobs.retrieve(job.id)).model_extra["polytune_status"] != "validating_files" and j
        ),
        60,
    )
    client.fine_tuning.jobs.cancel(job.id)
    hp = queued.hyperparameters.to_dict()
    assert hp["lora"] is False and hp["learning_rate"] == 0.001 and hp["n_epochs"] == 1
    for key in ("warmup_ratio", "weight_decay", "max_grad_norm", "context_length", "packing", "lr_scheduler"):
        assert hp.get(key) is not None, key
    assert (hp["warmup_ratio"], hp["weight_decay"], hp["max_grad_norm"], hp["packing"]) == (0.0, 0.0, 1.0, False)
    assert queued.model_extra["suffix"] == "neb-full"
