"""SeekrFlow PREFERENCE (DPO) fine-tunes through the `seekrai` SDK: created on a file in
SeekrFlow's preference shape with beta and loss_type (the SDK passes loss_type through as an
extra field), echoed back; bad values and files without preference pairs are 422s at the
field, as the Seekr dialect answers every refused body field."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.helpers import chat_jsonl, preference_rows, wait_for

seekrai = pytest.importorskip("seekrai", reason="`make venv` installs it into .venv-clients")
from seekrai.types import InfrastructureConfig, TrainingConfig  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _seekr_shape(row: dict) -> dict:
    """An OpenAI-shaped pair as SeekrFlow writes it: messages, chosen, rejected."""
    return {
        "messages": row["input"]["messages"],
        "chosen": row["preferred_output"][0]["content"],
        "rejected": row["non_preferred_output"],
    }


@pytest.fixture
def pairs_file(seekr, tmp_path) -> str:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(_seekr_shape(r)) + "\n" for r in preference_rows(12)))
    return seekr.files.upload(path, purpose="fine-tune").id


@pytest.fixture
def chat_file(seekr, tmp_path) -> str:
    path = tmp_path / "chat.jsonl"
    path.write_bytes(chat_jsonl(12))
    return seekr.files.upload(path, purpose="fine-tune").id


@pytest.fixture
def project(seekr) -> int:
    return seekr.projects.create(name="Preference runs", description="DPO through the Seekr dialect").id


def _infra() -> InfrastructureConfig:
    return InfrastructureConfig(accel_type="A100", n_accel=1)


def test_the_sdk_creates_a_preference_job(seekr, pairs_file, project):
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[pairs_file],
            model="polytune-tiny",
            n_epochs=2,
            batch_size=4,
            learning_rate=1e-3,
            fine_tune_type="PREFERENCE",
            beta=0.2,
            loss_type="KTO_PAIR",
        ),
        infrastructure_config=_infra(),
    )
    try:
        assert job.fine_tune_type.value == "PREFERENCE" and job.beta == 0.2
        assert job.model_extra["loss_type"] == "KTO_PAIR"
    finally:
        seekr.fine_tuning.cancel(job.id)


def test_beta_left_out_resolves_to_the_default(seekr, pairs_file, project):
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[pairs_file], model="polytune-tiny", n_epochs=1, fine_tune_type="PREFERENCE"
        ),
        infrastructure_config=_infra(),
    )
    try:
        assert job.beta is None and job.model_extra["loss_type"] == "SIGMOID"
        seen = wait_for(lambda: (j := seekr.fine_tuning.retrieve(job.id)).status.value != "pending" and j)
        assert seen.status.value in ("queued", "running", "completed") and seen.beta == 0.1
    finally:
        seekr.fine_tuning.cancel(job.id)


@pytest.mark.parametrize(
    "training,loc",
    [
        ({"loss_type": "KTO"}, ["body", "training_config", "loss_type"]),
        ({"beta": 0}, ["body", "training_config", "beta"]),
        ({"beta": -1.0}, ["body", "training_config", "beta"]),
    ],
)
def test_bad_preference_settings_are_422_at_the_field(server, headers, pairs_file, training, loc):
    body = {
        "project_id": None,
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
        "training_config": {
            "training_files": [pairs_file],
            "model": "polytune-tiny",
            "n_epochs": 1,
            "fine_tune_type": "PREFERENCE",
            **training,
        },
    }
    r = httpx.post(f"{server.url}/v1/flow/fine-tune", json=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][: len(loc)] == loc


def test_a_chat_file_is_refused_for_preference(server, headers, chat_file):
    body = {
        "project_id": None,
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
        "training_config": {
            "training_files": [chat_file],
            "model": "polytune-tiny",
            "n_epochs": 1,
            "fine_tune_type": "PREFERENCE",
        },
    }
    r = httpx.post(f"{server.url}/v1/flow/fine-tune", json=body, headers=headers)
    assert r.status_code == 422, r.text
    (detail,) = r.json()["detail"]
    assert detail["loc"] == ["body", "training_config", "training_files"]
    assert "a dpo job trains on preference" in detail["msg"]


def test_a_file_uploaded_for_preference_trains_preference_jobs_only(seekr, server, headers, project, tmp_path):
    """SeekrFlow uploads carry the method's own purpose; the job of that method takes it, a job
    of another method refuses it at the field, naming the purposes it takes."""
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(_seekr_shape(r)) + "\n" for r in preference_rows(12)))
    fid = seekr.files.upload(path, purpose="preference-fine-tune").id
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[fid], model="polytune-tiny", n_epochs=1, fine_tune_type="PREFERENCE"
        ),
        infrastructure_config=_infra(),
    )
    seekr.fine_tuning.cancel(job.id)
    body = {
        "project_id": project,
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
        "training_config": {"training_files": [fid], "model": "polytune-tiny", "n_epochs": 1},
    }
    r = httpx.post(f"{server.url}/v1/flow/fine-tunes", json=body, headers=headers)
    assert r.status_code == 422, r.text
    (err,) = r.json()["detail"]
    assert err["loc"][:3] == ["body", "training_config", "training_files"]
    assert "preference-fine-tune" in err["msg"] and "'fine-tune'" in err["msg"]
