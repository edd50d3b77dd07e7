"""The not-fitted test on a job's metrics rows: the last epoch's mean token accuracy against one
half (what greedy decoding needs), or its mean loss against ln 2 when no accuracy was logged."""

from __future__ import annotations

from polytune.domain.spec import JobSpec
from polytune.training.fit_check import underfit_note


def spec(method: str = "supervised", **hp) -> JobSpec:
    return JobSpec.model_validate(
        {
            "model": "polytune-tiny",
            "method": {"type": method},
            "training_files": ["file-x"],
            "hyperparameters": {"n_epochs": 2, "learning_rate_multiplier": 1.0, **hp},
        }
    )


def rows(losses: list[float], accuracies: list[float | None]) -> list[dict]:
    return [
        {"step": i + 1, "train_loss": loss, "train_accuracy": acc}
        for i, (loss, acc) in enumerate(zip(losses, accuracies, strict=True))
    ]


def test_the_last_epochs_accuracy_decides():
    # Step 3 alone would pass; the last epoch (steps 3-4) predicts 40% of the answer tokens.
    note = underfit_note(rows([3.0, 2.5, 0.6, 1.4], [0.1, 0.2, 0.6, 0.2]), spec())
    assert note is not None
    message, data = note
    assert "40%" in message and "n_epochs was 2" in message and "learning_rate_multiplier (was 1)" in message
    assert data["train_accuracy"] == 0.4 and data["first_train_loss"] == 3.0
    assert underfit_note(rows([3.0, 2.5, 1.2, 1.1], [0.1, 0.2, 0.5, 0.7]), spec()) is None


def test_the_loss_stands_in_without_accuracy():
    assert underfit_note(rows([3.0, 2.0, 0.5, 0.6], [None] * 4), spec()) is None
    message, _ = underfit_note(rows([3.0, 2.0, 0.9, 0.8], [None] * 4), spec(learning_rate=1e-4))
    assert "above ln 2" in message and "learning_rate_multiplier (was 1, a learning rate of 0.0001)" in message


def test_only_supervised_jobs_with_losses_are_judged():
    assert underfit_note(rows([3.0, 3.0], [0.0, 0.0]), spec("dpo")) is None
    assert underfit_note([{"step": 1, "valid_loss": 2.0}], spec()) is None
