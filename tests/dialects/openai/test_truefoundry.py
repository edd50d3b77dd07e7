"""TrueFoundry through the official openai SDK with base URL `<server>/api/llm`: every OpenAI
route answers there too (the same router), x-tfy-* headers are accepted, metadata and method
round-trip, and model ids containing '/' work, percent-encoded in paths."""

from __future__ import annotations

import io
import json

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl, wait_for

SLASH_MODEL = "acme/tiny-chat"


@pytest.fixture
def tfy(server):
    from openai import OpenAI

    return OpenAI(
        base_url=f"{server.url}/api/llm",
        api_key=server.key_a,
        max_retries=0,
        _strict_response_validation=True,
        default_headers={
            "x-tfy-provider-name": "polytune-local",
            "x-tfy-metadata": json.dumps({"tfy_log_request": "true", "team": "ml"}),
        },
    )


@pytest.fixture
def slash_model(server) -> str:
    """A catalog model whose name holds a '/', as TrueFoundry's model ids always do."""
    from polytune.catalog.models import Catalog
    from polytune.catalog.tiny import ensure_tiny

    data_dir = server.tmp / "data"
    catalog = Catalog(data_dir)
    if SLASH_MODEL not in {e.name for e in catalog.list()}:
        catalog.add(
            SLASH_MODEL,
            ensure_tiny(data_dir / "models"),
            adapter_default="full",
            base_learning_rate=3e-3,
            lr_scheduler="constant",
        )
    return SLASH_MODEL


def test_every_openai_route_is_also_under_api_llm(server):
    paths = httpx.get(f"{server.url}/openapi.json").json()["paths"]
    openai_paths = {
        p[len("/v1") :]: set(ops) for p, ops in paths.items() if p.startswith("/v1/") and not p.startswith("/v1/flow/")
    }
    tfy_paths = {p[len("/api/llm") :]: set(ops) for p, ops in paths.items() if p.startswith("/api/llm/")}
    assert "/fine_tuning/jobs" in openai_paths and "/uploads/{upload_id}/parts" in openai_paths
    assert tfy_paths == openai_paths


@pytest.mark.slow
def test_truefoundry_job_on_a_slash_model_trains_and_round_trips(client, tfy, slash_model):
    fid = tfy.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(10))), purpose="fine-tune").id
    method = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}}
    job = tfy.fine_tuning.jobs.create(
        model=slash_model, training_file=fid, suffix="tfy", metadata={"team": "ml", "run": "1"}, method=method
    )
    assert job.metadata == {"team": "ml", "run": "1"} and job.model == slash_model
    assert job.method.type == "supervised" and job.method.supervised.hyperparameters.n_epochs == 1
    # One store behind both prefixes: the same job through /v1.
    assert client.fine_tuning.jobs.retrieve(job.id).metadata == job.metadata
    assert [j.id for j in tfy.fine_tuning.jobs.list(metadata={"run": "1", "team": "ml"})] == [job.id]

    done = wait_for(
        lambda: (j := tfy.fine_tuning.jobs.retrieve(job.id)).status in ("succeeded", "failed", "cancelled") and j, 240
    )
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model.startswith(f"ft:{slash_model}:org-a:tfy:")
    assert done.method.supervised.hyperparameters.batch_size == 4 and done.metadata == job.metadata
    assert any(e.type == "metrics" for e in tfy.fine_tuning.jobs.list_events(job.id))

    # The SDK percent-encodes '/' in ids (%2F); so does this raw request, explicitly.
    for model_id in (slash_model, done.fine_tuned_model):
        assert tfy.models.retrieve(model_id).id == model_id
        encoded = model_id.replace("/", "%2F")
        r = httpx.get(f"{tfy.base_url}models/{encoded}", headers={"Authorization": f"Bearer {tfy.api_key}"})
        assert r.status_code == 200 and r.json()["id"] == model_id
    assert {slash_model, done.fine_tuned_model} <= {m.id for m in tfy.models.list()}


def test_truefoundry_errors_are_openai_shaped_and_create_nothing(tfy):
    before = len(tfy.fine_tuning.jobs.list(limit=1000).data)
    with pytest.raises(openai.BadRequestError) as e:
        tfy.fine_tuning.jobs.create(model="acme/missing", training_file="file-nope")
    assert e.value.body["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        tfy.models.retrieve("acme/missing")
    assert len(tfy.fine_tuning.jobs.list(limit=1000).data) == before
