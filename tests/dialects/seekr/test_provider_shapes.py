"""SeekrFlow's own request shapes through the `seekrai` SDK (issue 18): unknown keys in the
document's open objects (TrainingConfig, InfrastructureConfig, LoRAConfig and its extras,
RewardComponents) are accepted, ignored and named in a warning event; max_length defaults to
2500 bounded by the model's context and is echoed; GRPO reads back as GRPO; dropout 1 is
inside the document's bounds."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import wait_for

seekrai = pytest.importorskip("seekrai", reason="`make venv` installs it into .venv-clients")
from seekrai.types import InfrastructureConfig, LoRAConfig, TrainingConfig  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TINY_CONTEXT = 1024  # polytune-tiny's catalog max_length


@pytest.fixture
def project(seekr) -> int:
    return seekr.projects.create(name="Provider shapes", description="Seekr's own request shapes").id


def _warnings(seekr, job_id: str) -> list[str]:
    return [
        e.model_extra["message"]
        for e in seekr.fine_tuning.list_events(job_id).data
        if e.model_extra.get("level") == "warn"
    ]


def _cancel_unless_finished(seekr, job_id: str) -> None:
    """Cleanup: these tests read a job's shape back and stop it. A job may have failed on its own
    in the meantime (a GRPO job on a chat file does, at validation), and a finished job can't be
    cancelled."""
    try:
        seekr.fine_tuning.cancel(job_id)
    except seekrai.error.InvalidRequestError:
        assert seekr.fine_tuning.retrieve(job_id).status.value in ("completed", "failed", "cancelled")


def test_unknown_keys_in_open_objects_are_ignored_with_a_warning(seekr, train_file, project):
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[train_file],
            model="polytune-tiny",
            n_epochs=1,
            batch_size=2,
            learning_rate=1e-3,
            warmup_stepz=5,
            lora_config=LoRAConfig(r=4, dropout=1.0, rank_pattern={}, extras={"use_dora": True}),
        ),
        infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1, zone="eu"),
    )
    assert job.lora_config.dropout == 1.0 and job.lora_config.r == 4
    # Left out: the document's 2500, bounded by polytune-tiny's context.
    assert job.max_length == min(2500, TINY_CONTEXT)
    warned = _warnings(seekr, job.id)
    (ignored,) = [w for w in warned if w.startswith("Ignored unknown keys")]
    for key in (
        "training_config.warmup_stepz",
        "infrastructure_config.zone",
        "training_config.lora_config.rank_pattern",
        "training_config.lora_config.extras.use_dora",
    ):
        assert key in ignored
    assert any("dropout is 1" in w for w in warned)
    _cancel_unless_finished(seekr, job.id)


def test_max_length_and_experiment_name_are_echoed(seekr, client, train_file, project):
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[train_file],
            model="polytune-tiny",
            n_epochs=1,
            batch_size=2,
            learning_rate=1e-3,
            max_length=300,
            experiment_name="exp-1",
        ),
        infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
    )
    assert job.max_length == 300 and seekr.fine_tuning.retrieve(job.id).max_length == 300
    # The dashboard reads jobs through /v1: the experiment name is there (and names the W&B run,
    # tests/training/test_wandb_run.py).
    assert client.fine_tuning.jobs.retrieve(job.id).model_extra["experiment_name"] == "exp-1"
    assert not _warnings(seekr, job.id)
    _cancel_unless_finished(seekr, job.id)


def test_reward_components_extras_and_grpo_reads_back_as_grpo(server, seekr, train_file):
    body = {
        "training_config": {
            "training_files": [train_file],
            "model": "polytune-tiny",
            "n_epochs": 1,
            "batch_size": 2,
            "learning_rate": 1e-3,
            "fine_tune_type": "GRPO",
            "reward_components": {
                "format_reward_weight": 0.2,
                "graders": [{"type": "math_accuracy", "weight": 0.8}],
                "normalise": True,
            },
        },
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
    }
    r = httpx.post(f"{server.url}/v1/flow/fine-tune", json=body, headers={"Authorization": server.key_a})
    assert r.status_code == 200, r.text
    job = seekr.fine_tuning.retrieve(r.json()["id"])
    assert job.fine_tune_type.value == "GRPO"
    assert "normalise" not in (job.reward_components.model_dump() if job.reward_components else {})
    assert any("training_config.reward_components.normalise" in w for w in _warnings(seekr, job.id))
    _cancel_unless_finished(seekr, job.id)


BOOK = "\n\n".join(f"Chapter {i}. The lighthouse keeper counted {i} ships before the storm." for i in range(24))


@pytest.mark.slow
@pytest.mark.sqlite_only
def test_pre_train_on_a_raw_text_file_trains_to_completed(seekr, client, project, tmp_path):
    path = tmp_path / "book.txt"
    path.write_text(BOOK)
    raw = seekr.files.upload(path, purpose="pre-train").id
    job = seekr.fine_tuning.create(
        project_id=project,
        training_config=TrainingConfig(
            training_files=[raw],
            model="polytune-tiny",
            n_epochs=1,
            batch_size=2,
            learning_rate=1e-3,
            max_length=64,
            pre_train=True,
        ),
        infrastructure_config=InfrastructureConfig(accel_type="A100", n_accel=1),
    )
    assert job.pre_train is True and job.training_files == [raw] and job.fine_tune_type.value == "STANDARD"
    # Trains on a {"text"} file made from the book: one document per paragraph, packed.
    trained = client.fine_tuning.jobs.retrieve(job.id)
    assert trained.training_file != raw and trained.hyperparameters.to_dict()["packing"] is True
    rows = client.files.content(trained.training_file).text.splitlines()
    assert (
        len(rows) == 24 and rows[0] == '{"text":"Chapter 0. The lighthouse keeper counted 0 ships before the storm."}'
    )
    done = wait_for(
        lambda: (j := seekr.fine_tuning.retrieve(job.id)).status.value in ("completed", "failed", "cancelled") and j,
        300,
    )
    assert done.status.value == "completed", done.error_analysis
    assert [e for e in seekr.fine_tuning.list_events(job.id).data if e.loss is not None]


def test_pre_train_refuses_other_types_and_non_text_files(server, seekr, project, train_file, tmp_path):
    headers = {"Authorization": server.key_a}
    body = {
        "training_config": {
            "training_files": [train_file],
            "model": "polytune-tiny",
            "n_epochs": 1,
            "batch_size": 2,
            "learning_rate": 1e-3,
            "pre_train": True,
        },
        "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
    }
    before = len(seekr.files.list().data), len(seekr.fine_tuning.list().data)
    grpo = {**body, "training_config": {**body["training_config"], "fine_tune_type": "GRPO"}}
    r = httpx.post(f"{server.url}/v1/flow/fine-tune", json=grpo, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "training_config", "fine_tune_type"]
    # A chat file is not raw text: refused at the training file, and nothing is left behind.
    r = httpx.post(f"{server.url}/v1/flow/fine-tune", json=body, headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "training_config", "training_files"]
    assert "raw text" in r.json()["detail"][0]["msg"]
    assert (len(seekr.files.list().data), len(seekr.fine_tuning.list().data)) == before
