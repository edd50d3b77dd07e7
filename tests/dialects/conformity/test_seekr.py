"""Conformity walk of SeekrFlow's create-fine-tuning-job document: every field of
seekr_fields.py through /v1/flow/fine-tune (the sync SDK's path), each refusal a 422 whose
`loc` names the field, every response parsed by seekrai's own FinetuneResponse (the SDK
validates every response), in every polytune status. In process; no job trains."""

from __future__ import annotations

import copy
import sys
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.helpers import chat_jsonl, preference_jsonl

from .seekr_fields import MODEL, PROJECT, SEEKR_JOB, SEEKR_REQUEST, SEEKR_STATUSES, VALIDATION
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

CLIENTS = ROOT / ".venv-clients"
if CLIENTS.is_dir() and str(CLIENTS) not in sys.path:
    sys.path.append(str(CLIENTS))

from seekrai import SeekrFlow  # noqa: E402
from seekrai.types.finetune import FinetuneResponse  # noqa: E402


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with app_in_process(tmp_path_factory.mktemp("seekr-conformity")) as app:
        yield app


def sdk(api: App) -> SeekrFlow:
    return SeekrFlow(api_key=api.key_a, base_url=BASE, http_client=api.http)


@pytest.fixture(scope="module")
def made(api: App, tmp_path_factory) -> dict[str, Any]:
    """The caller's files (chat, preference pairs, validation) and a project, through the SDK."""
    client, folder = sdk(api), tmp_path_factory.mktemp("seekr-files")
    out: dict[str, Any] = {}
    for kind, data, purpose in (
        ("chat", chat_jsonl(12), "fine-tune"),
        ("preference", preference_jsonl(12), "preference-fine-tune"),
        ("validation", chat_jsonl(6, answer="Red."), "fine-tune"),
    ):
        (folder / f"{kind}.jsonl").write_bytes(data)
        out[kind] = client.files.upload(folder / f"{kind}.jsonl", purpose=purpose).id
    out["project"] = client.projects.create(name="conformity", description="the conformity walk").id
    return out


def _body(f: Field, made: dict[str, Any]) -> dict[str, Any]:
    body = merge(
        {
            "project_id": made["project"],
            "training_config": {"training_files": [made["chat"]], "model": MODEL, "n_epochs": 1},
            "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
        },
        f.base,
    )
    return body


def _preference(body: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    if body["training_config"].get("fine_tune_type") == "PREFERENCE":
        body["training_config"]["training_files"] = [made["preference"]]
    return body


def _value(value: Any, made: dict[str, Any]) -> Any:
    return (
        {PROJECT: made["project"], VALIDATION: [made["validation"]]}.get(value, value)
        if isinstance(value, str)
        else value
    )


@pytest.mark.parametrize("case", cases(SEEKR_REQUEST), ids=case_id)
def test_seekr_request_field(api, made, case):
    f, kind, value = case
    body = _body(f, made)
    body = drop(body, f.path) if kind in ("default", "required") else put(body, f.path, _value(value, made))
    r = api.http.post("/v1/flow/fine-tune", json=_preference(body, made), headers=api.headers(bearer=False))
    if kind in ("outside", "required"):
        assert r.status_code == 422, (r.status_code, r.text)
        detail = r.json()["detail"]
        assert isinstance(detail, list) and detail, detail
        loc = [str(p) for p in detail[0]["loc"]]
        assert loc[0] == "body" and ".".join(loc[1:]).startswith(f.named), (f.named, detail)
        return
    assert r.status_code == 200, r.text
    job = r.json()
    FinetuneResponse(**copy.deepcopy(job))  # what the SDK does with every response (it edits what it reads)
    if f.echo != "":
        shown = get(job, f.shown_at)
        expected = value if kind == "default" else _value(value, made)
        assert matches(expected, shown) if kind == "default" else shown == expected, (f.shown_at, shown)
    api.http.put(f"/v1/flow/fine-tunes/{job['id']}/cancel", headers=api.headers(bearer=False))


def test_open_objects_take_any_key_and_the_job_warns(api, made):
    """TrainingConfig, InfrastructureConfig, LoRAConfig (and extras), RewardComponents are
    `additionalProperties: true`: an unknown key is accepted, ignored and named in an event."""
    body = _body(Field("x"), made)
    body = merge(
        body,
        {
            "training_config": {
                "typo": 1,
                "fine_tune_type": "REINFORCEMENT",
                "lora_config": {"x": 1, "extras": {"y": 2}},
                "reward_components": {"graders": [{"type": "math_accuracy"}], "z": 3},
            },
            "infrastructure_config": {"zone": "eu"},
        },
    )
    r = api.http.post("/v1/flow/fine-tune", json=body, headers=api.headers(bearer=False))
    assert r.status_code == 200, r.text
    events = sdk(api).fine_tuning.list_events(r.json()["id"]).data or []
    (warning,) = [e for e in events if "Ignored" in (getattr(e, "message", "") or "")]
    for key in (
        "training_config.typo",
        "infrastructure_config.zone",
        "training_config.lora_config.x",
        "training_config.lora_config.extras.y",
        "training_config.reward_components.z",
    ):
        assert key in warning.message


def test_every_response_field_in_every_status(api, made):
    from polytune.domain.job import JobStatus

    client = sdk(api)
    bodies = [
        {
            "training_config": {"lora_config": {}, "experiment_name": "e", "validation_files": [made["validation"]]},
            "description": "d",
        },
        {"training_config": {"fine_tune_type": "PREFERENCE", "beta": 0.2, "training_files": [made["preference"]]}},
        {"training_config": {"fine_tune_type": "GRPO"}},
        {"project_id": None},
    ]
    ids = []
    for extra in bodies:
        r = api.http.post(
            "/v1/flow/fine-tunes", json=merge(_body(Field("x"), made), extra), headers=api.headers(bearer=False)
        )
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    for job_id in ids:
        for status in JobStatus:
            api.set_status(job_id, status.value)
            raw = api.http.get(f"/v1/flow/fine-tunes/{job_id}", headers=api.headers(bearer=False)).json()
            assert check_response_fields(raw, SEEKR_JOB) == [], (status, raw)
            assert raw["status"] in SEEKR_STATUSES, raw
            assert client.fine_tuning.retrieve(job_id).status.value == raw["status"]
    # A job made through OpenAI's API reads back through SeekrFlow's, accelerator and all.
    other = api.http.post(
        "/v1/fine_tuning/jobs", json={"model": MODEL, "training_file": made["chat"]}, headers=api.headers()
    ).json()
    assert client.fine_tuning.retrieve(other["id"]).accel_type.value == "A10"
    listed = {j.id for j in client.fine_tuning.list().data or []}
    assert set(ids) | {other["id"]} <= listed
    api.set_status(ids[0], "queued")
    assert client.fine_tuning.cancel(ids[0]).status.value == "cancelled"


@pytest.mark.parametrize(
    "training", [{}, {"fine_tune_type": "PREFERENCE"}, {"lora_config": {}}], ids=["standard", "preference", "lora"]
)
def test_a_validated_job_shows_the_values_it_trains_with(api, made, training):
    """What was left to polytune (batch_size, learning_rate; beta for PREFERENCE) is resolved
    when the files are validated (the validation threads; nothing trains) and shown as numbers
    seekrai's model takes."""
    from tests.helpers import wait_for

    body = _preference(merge(_body(Field("x"), made), {"training_config": training}), made)
    job_id = api.http.post("/v1/flow/fine-tune", json=body, headers=api.headers(bearer=False)).json()["id"]
    api.app.state.services.jobs.validate_pending()
    wait_for(lambda: sdk(api).fine_tuning.retrieve(job_id).status.value != "pending", timeout=120)
    raw = api.http.get(f"/v1/flow/fine-tunes/{job_id}", headers=api.headers(bearer=False)).json()
    assert raw["status"] == "queued", raw
    FinetuneResponse(**copy.deepcopy(raw))
    schema = {"batch_size": "integer", "learning_rate": "number", "n_epochs": "integer", "max_length": "integer"}
    assert check_response_fields(raw, schema) == [], raw
    if training.get("fine_tune_type") == "PREFERENCE":
        assert raw["beta"] == 0.1 and raw["loss_type"] == "SIGMOID"
    if "lora_config" in training:
        assert raw["lora_config"]["r"] == 8 and raw["lora_config"]["alpha"] == 32
