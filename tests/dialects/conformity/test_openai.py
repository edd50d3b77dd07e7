"""Conformity walk of the create-fine-tuning-job documents that speak OpenAI's API (OpenAI and
Nebius at /v1, TrueFoundry at /api/llm): every request field of openai_fields.py, each value
sent as the SDK sends it, and every response checked field by field and parsed by the openai
SDK's own FineTuningJob model (what `_strict_response_validation=True` runs). In process; no
job trains (there is no scheduler: each waits in its first status)."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.fine_tuning import FineTuningJob

from tests.helpers import chat_jsonl, preference_jsonl

from tests.helpers import wait_for

from .openai_fields import (
    MODEL,
    NEBIUS_HYPERPARAMETERS,
    NEBIUS_JOB,
    NEBIUS_LORA,
    NEBIUS_REQUEST,
    OPENAI_JOB,
    OPENAI_REQUEST,
    OPENAI_STATUSES,
    RL,
    TRUEFOUNDRY_JOB,
    TRUEFOUNDRY_REQUEST,
    TRUEFOUNDRY_STATUSES,
)
from .support import (
    BASE,
    App,
    Field,
    app_in_process,
    case_id,
    cases,
    check_response_fields,
    drop,
    get,
    matches,
    merge,
    put,
)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with app_in_process(tmp_path_factory.mktemp("openai-conformity")) as app:
        yield app


@pytest.fixture(scope="module")
def files(api: App) -> dict[str, str]:
    client = sdk(api)
    return {
        kind: client.files.create(file=(f"{kind}.jsonl", data), purpose="fine-tune").id
        for kind, data in (
            ("chat", chat_jsonl(12)),
            ("preference", preference_jsonl(12)),
            ("validation", chat_jsonl(6, answer="Red.")),
        )
    }


def sdk(api: App, prefix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{BASE}{prefix}",
        api_key=api.key_a,
        http_client=api.http,
        max_retries=0,
        _strict_response_validation=True,
    )


def _body(f: Field, files: dict[str, str]) -> dict[str, Any]:
    body = merge({"model": MODEL, "training_file": files["chat"]}, f.base)
    if f.path.startswith("method.dpo") or f.base.get("method", {}).get("type") == "dpo":
        body["training_file"] = files["preference"]
    return body


def _send(api: App, prefix: str, f: Field, files: dict[str, str], kind: str, value: Any):
    body = _body(f, files)
    if f.path == "method.type" and value == "dpo":
        body["training_file"] = files["preference"]
    if f.path == "validation_file" and kind != "outside":
        value = files["validation"]
    if kind in ("default", "required"):
        body = drop(body, f.path)
    else:
        body = put(body, f.path, value)
    return api.http.post(f"{prefix}/fine_tuning/jobs", json=body, headers=api.headers())


def _walk(api: App, prefix: str, f: Field, kind: str, value: Any, files: dict[str, str]) -> None:
    r = _send(api, prefix, f, files, kind, value)
    if kind in ("outside", "required"):
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        # The error names the field, or the one part of it that is wrong.
        assert error["param"] == f.named or error["param"].startswith((f.named + ".", f.named + "[")), error
        assert isinstance(error["code"], str) and error["code"], error
        return
    assert r.status_code == 200, r.text
    job = r.json()
    FineTuningJob.model_validate(job)  # the SDK's model, strictly
    if f.echo == "":
        return
    shown = get(job, f.shown_at)
    if kind == "default":
        assert matches(value, shown), (f.shown_at, shown)
    else:
        assert shown == value, (f.shown_at, shown)
    api.http.post(f"{prefix}/fine_tuning/jobs/{job['id']}/cancel", headers=api.headers())


@pytest.mark.parametrize("case", cases(OPENAI_REQUEST), ids=case_id)
def test_openai_request_field(api, files, case):
    _walk(api, "/v1", *case, files)


@pytest.mark.parametrize("case", cases(NEBIUS_REQUEST), ids=case_id)
def test_nebius_request_field(api, files, case):
    _walk(api, "/v1", *case, files)


@pytest.mark.parametrize("case", cases(TRUEFOUNDRY_REQUEST), ids=case_id)
def test_truefoundry_request_field(api, files, case):
    _walk(api, "/api/llm", *case, files)


def _every_kind_of_job(api: App, prefix: str, files: dict[str, str]) -> list[dict[str, Any]]:
    bodies = [
        {
            "training_file": files["chat"],
            "validation_file": files["validation"],
            "suffix": "s",
            "seed": 3,
            "metadata": {"k": "v"},
            "integrations": [{"type": "wandb", "wandb": {"project": "p"}}],
            "hyperparameters": {"n_epochs": 2, "lora": True, "lora_r": 4, "warmup_ratio": 0.1},
            "tags": ["t"],
        },
        {"training_file": files["chat"]},
        {"training_file": files["preference"], "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}},
        {"training_file": files["chat"], **RL},
        {"training_file": files["chat"], "hyperparameters": {"lora": False}},
    ]
    out = []
    for body in bodies:
        r = api.http.post(f"{prefix}/fine_tuning/jobs", json={"model": MODEL, **body}, headers=api.headers())
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


@pytest.mark.parametrize(
    "prefix,schema,statuses",
    [("/v1", {**OPENAI_JOB, **NEBIUS_JOB}, OPENAI_STATUSES), ("/api/llm", TRUEFOUNDRY_JOB, TRUEFOUNDRY_STATUSES)],
    ids=["openai-nebius", "truefoundry"],
)
def test_every_response_field_in_every_status(api, files, prefix, schema, statuses):
    """Each document's job fields present and of their type, and `status` inside its enum, for
    every kind of job in every polytune status; the SDK parses each retrieve, list and cancel."""
    from polytune.domain.job import JobStatus

    client = sdk(api, prefix)
    jobs = _every_kind_of_job(api, prefix, files)
    for made in jobs:
        for status in JobStatus:
            api.set_status(made["id"], status.value)
            raw = api.http.get(f"{prefix}/fine_tuning/jobs/{made['id']}", headers=api.headers()).json()
            assert check_response_fields(raw, schema) == [], (status, raw)
            assert raw["status"] in statuses and raw["polytune_status"] == status.value, raw
            assert client.fine_tuning.jobs.retrieve(made["id"]).status == raw["status"]
    listed = {j.id: j for j in client.fine_tuning.jobs.list(limit=100)}
    assert {j["id"] for j in jobs} <= set(listed)
    api.set_status(jobs[0]["id"], "queued")
    assert client.fine_tuning.jobs.cancel(jobs[0]["id"]).status == "cancelled"


@pytest.mark.parametrize(
    "hyperparameters",
    [{}, {"lora": False}, {"lora": True}, {"lora": True, "lora_r": 4}],
    ids=["left-out", "full", "lora", "lora-r4"],
)
def test_nebius_validated_job_shows_every_setting_it_trains_with(api, files, hyperparameters):
    """Left out, each Nebius hyperparameter is resolved when the job's files are validated (the
    validation threads, as the scheduler starts them; nothing trains), and shown by its name
    and type, with LoRA or without."""
    made = api.http.post(
        "/v1/fine_tuning/jobs",
        json={"model": MODEL, "training_file": files["chat"], "hyperparameters": hyperparameters},
        headers=api.headers(),
    ).json()
    api.app.state.services.jobs.validate_pending()
    job = wait_for(
        lambda: (j := sdk(api).fine_tuning.jobs.retrieve(made["id"])).status != "validating_files" and j, timeout=120
    )
    assert job.status == "queued", job.error
    raw = api.http.get(f"/v1/fine_tuning/jobs/{made['id']}", headers=api.headers()).json()
    lora = hyperparameters.get("lora", raw["hyperparameters"].get("lora"))
    schema = {**NEBIUS_HYPERPARAMETERS, **(NEBIUS_LORA if lora else {})}
    assert check_response_fields(raw["hyperparameters"], schema) == [], raw["hyperparameters"]
    assert raw["hyperparameters"]["lora"] == lora and isinstance(raw["seed"], int)
    for key, value in hyperparameters.items():
        assert raw["hyperparameters"][key] == value
    api.http.post(f"/v1/fine_tuning/jobs/{made['id']}/cancel", headers=api.headers())
