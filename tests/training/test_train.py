from __future__ import annotations

import time

import pytest

from polytune.domain.spec import JobSpec
from polytune.services.hyperparameters import resolve_auto
from polytune.training.generate import generate_answers
from polytune.training.train import TrainingCancelled, run_training
from tests.training.support import RecordingReporter, resolved_spec

ROW_KEYS = {"step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy", "learning_rate"}


def _questions_and_answers(rows):
    return [r["messages"][:-1] for r in rows], [r["messages"][-1]["content"] for r in rows]


def _exact_match(model_dir, rows) -> float:
    questions, answers = _questions_and_answers(rows)
    replies = generate_answers(model_dir, questions, max_new_tokens=24)
    return sum(r == a for r, a in zip(replies, answers)) / len(answers)


@pytest.mark.slow
def test_the_demo_learns_its_answers_with_auto_hyperparameters(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    spec = resolve_auto(
        JobSpec(model="polytune-tiny", training_files=["file-demo"]), n_examples=len(demo_rows), entry=entry
    )
    assert _exact_match(model_path, demo_rows) <= 0.1
    reporter = RecordingReporter()
    # How fast is bench/'s business (a timed assertion fails on a busy machine).
    result = run_training(spec, entry, model_path, demo_rows, None, tmp_path, reporter)
    assert _exact_match(result.final_dir, demo_rows) >= 0.9
    assert result.steps == reporter.progress_calls[-1]["total_steps"]


def test_checkpoints_metrics_and_progress(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=4, batch_size=4, n_checkpoints=2)
    reporter = RecordingReporter()
    result = run_training(spec, entry, model_path, demo_rows[:8], demo_rows[8:12], tmp_path, reporter)

    assert result.steps == 8 and result.trained_tokens > 0
    assert [step for step, _, _ in reporter.checkpoints] == [6, 8]
    for step, folder, metrics in reporter.checkpoints:
        assert folder == tmp_path / "checkpoints" / f"step-{step}"
        assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
        # Reported after the epoch's evaluation, so the checkpoint carries its validation loss.
        assert {"train_loss", "train_mean_token_accuracy", "valid_loss"} <= set(metrics)
    assert (result.final_dir / "model.safetensors").is_file()
    assert (result.final_dir / "chat_template.jinja").is_file()

    assert [row["step"] for row in result.metrics_rows] == list(range(1, 9))
    assert all(set(row) == ROW_KEYS for row in result.metrics_rows)
    assert all(row["train_loss"] is not None for row in result.metrics_rows)
    assert [row["step"] for row in result.metrics_rows if row["valid_loss"] is not None] == [2, 4, 6, 8]
    assert {"valid_loss", "valid_mean_token_accuracy"} == set(reporter.metrics_calls[2][1])

    assert [p["trained_steps"] for p in reporter.progress_calls] == list(range(1, 9))
    assert all(p["total_steps"] == 8 for p in reporter.progress_calls)
    tokens = [p["trained_tokens"] for p in reporter.progress_calls]
    assert tokens == sorted(tokens) and tokens[-1] == result.trained_tokens
    assert all(p["estimated_finish"] >= time.time() - 60 for p in reporter.progress_calls)


def test_warmup_applies_on_a_constant_schedule_and_each_steps_rate_is_reported(tiny, demo_rows, tmp_path):
    # polytune-tiny's scheduler is constant, which transformers runs without warm-up; a
    # warmup_ratio makes it constant_with_warmup: the rate climbs, then stays at learning_rate.
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=2, batch_size=4, warmup_ratio=0.5, lr_scheduler="constant", n_checkpoints=0)
    reporter = RecordingReporter()
    result = run_training(spec, entry, model_path, demo_rows[:8], None, tmp_path, reporter)
    (started,) = [d for m, d in zip(reporter.events, reporter.event_data) if m.startswith("Training started")]
    assert started["lr_scheduler_type"] == "constant_with_warmup" and started["warmup_steps"] == 0.5
    rates = [m["learning_rate"] for _, m in reporter.metrics_calls if "train_loss" in m]
    assert rates == [row["learning_rate"] for row in result.metrics_rows] and len(rates) == 4
    assert rates[0] < rates[1] <= rates[2] == rates[3] == pytest.approx(2e-3)


def test_lora_dropout_one_trains_without_crashing(tiny, demo_rows, tmp_path):
    # SeekrFlow's bounds allow dropout 1: every input of the LoRA update is dropped while
    # training (the job warns that the adapter learns nothing), and training still runs.
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=1, batch_size=4, kind="lora", n_checkpoints=0)
    spec = spec.model_copy(
        update={
            "adapter": spec.adapter.model_copy(update={"lora": spec.adapter.lora.model_copy(update={"dropout": 1.0})})
        }
    )
    result = run_training(spec, entry, model_path, demo_rows[:4], None, tmp_path, RecordingReporter())
    assert result.steps == 1 and (result.final_dir / "adapter_config.json").is_file()


def test_lora_saves_an_adapter_folder_that_generates(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=1, batch_size=4, kind="lora", n_checkpoints=1)
    result = run_training(spec, entry, model_path, demo_rows[:4], None, tmp_path, RecordingReporter())
    assert (result.final_dir / "adapter_config.json").is_file()
    assert (result.final_dir / "tokenizer.json").is_file()
    assert not (result.final_dir / "model.safetensors").exists()
    assert len(generate_answers(result.final_dir, [demo_rows[0]["messages"][:-1]], max_new_tokens=4)) == 1


def test_training_stops_when_the_reporter_says_so(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=10, batch_size=4, n_checkpoints=10)
    reporter = RecordingReporter(stop_after=3)
    with pytest.raises(TrainingCancelled):
        run_training(spec, entry, model_path, demo_rows[:8], None, tmp_path, reporter)
    assert reporter.stop_checks == 4
    assert [p["trained_steps"] for p in reporter.progress_calls] == [1, 2, 3]
    # Epoch 1 ended at step 2 and its checkpoint was reported; nothing after the stop.
    assert [step for step, _, _ in reporter.checkpoints] == [2]
    assert not (tmp_path / "checkpoints" / "step-4").exists()
    assert not (tmp_path / "final").exists()
