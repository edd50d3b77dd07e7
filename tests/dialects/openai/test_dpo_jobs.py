"""DPO jobs through the official openai SDK (strict parsing): created with OpenAI's
`method.dpo.hyperparameters`, echoed back with beta resolved, and every bad preference
setting or non-preference file answered with a 400 that names the parameter."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from polytune.domain.spec import PREFERENCE_LOSS_TYPES
from tests.helpers import chat_jsonl, preference_jsonl, wait_for


@pytest.fixture
def pairs_file(client):
    return client.files.create(file=("pairs.jsonl", io.BytesIO(preference_jsonl(12))), purpose="fine-tune").id


@pytest.fixture
def chat_file(client):
    return client.files.create(file=("chat.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id


def _dpo(**hyperparameters) -> dict:
    return {"type": "dpo", "dpo": {"hyperparameters": hyperparameters}}


def _count_jobs(client) -> int:
    return len(client.fine_tuning.jobs.list(limit=1000).data)


def test_a_dpo_job_echoes_its_method_and_resolves_beta(client, pairs_file):
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny",
        training_file=pairs_file,
        method=_dpo(n_epochs=2, batch_size=4, learning_rate_multiplier=0.5),
    )
    try:
        assert job.method.type == "dpo" and job.method.dpo is not None
        hp = job.method.dpo.hyperparameters
        assert hp.beta == "auto" and hp.n_epochs == 2 and hp.batch_size == 4
        assert hp.learning_rate_multiplier == 0.5 and hp.model_extra["loss_type"] == "sigmoid"
        validated = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status != "validating_files" and j)
        assert validated.status in ("queued", "running", "succeeded"), validated.error
        assert validated.method.dpo.hyperparameters.beta == 0.1  # the documented default
    finally:
        client.fine_tuning.jobs.cancel(job.id)


def test_every_loss_type_is_accepted_and_echoed(client, pairs_file):
    for loss_type in PREFERENCE_LOSS_TYPES:
        job = client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=pairs_file, method=_dpo(beta=0.25, loss_type=loss_type)
        )
        client.fine_tuning.jobs.cancel(job.id)
        hp = client.fine_tuning.jobs.retrieve(job.id).method.dpo.hyperparameters
        assert (hp.beta, hp.model_extra["loss_type"]) == (0.25, loss_type)


BAD = [
    (_dpo(beta=0), "method.dpo.hyperparameters.beta"),
    (_dpo(beta=-0.5), "method.dpo.hyperparameters.beta"),
    (_dpo(beta="big"), "method.dpo.hyperparameters.beta"),
    (_dpo(loss_type="kto"), "method.dpo.hyperparameters.loss_type"),
    (_dpo(loss_type=3), "method.dpo.hyperparameters.loss_type"),
    (
        {"type": "supervised", "supervised": {"hyperparameters": {"loss_type": "ipo"}}},
        "method.supervised.hyperparameters.loss_type",
    ),
]


@pytest.mark.parametrize("method,param", BAD)
def test_bad_preference_settings_are_400_naming_the_param(client, pairs_file, method, param):
    before = _count_jobs(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.post(
            "/fine_tuning/jobs",
            body={"model": "polytune-tiny", "training_file": pairs_file, "method": method},
            cast_to=httpx.Response,
        )
    assert e.value.body["param"] == param, e.value.body
    assert e.value.body["message"]
    assert _count_jobs(client) == before


def test_a_file_without_preference_pairs_is_400_for_dpo(client, pairs_file, chat_file):
    before = _count_jobs(client)
    for kwargs, param in (
        ({"training_file": chat_file}, "training_file"),
        ({"training_file": pairs_file, "validation_file": chat_file}, "validation_file"),
    ):
        with pytest.raises(openai.BadRequestError) as e:
            client.fine_tuning.jobs.create(model="polytune-tiny", method=_dpo(), **kwargs)
        assert e.value.body["param"] == param and e.value.body["code"] == "invalid_file_format"
        assert "holds chat" in e.value.body["message"] and "a dpo job trains on preference" in e.value.body["message"]
    assert _count_jobs(client) == before
