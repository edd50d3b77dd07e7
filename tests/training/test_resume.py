"""Resume equivalence, torchtune-style: a run stopped mid-epoch and continued from its trainer
checkpoint ends where the uninterrupted run ends (same loss, same weights within 1e-5)."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from polytune.training.callback import ResumeEvery
from polytune.training.train import TrainingStopped, run_training
from tests.training.support import RecordingReporter, resolved_spec


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def _max_diff(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.parametrize("reason", ["pause", "preempt"])
def test_stopped_then_resumed_matches_uninterrupted(tiny, demo_rows, tmp_path, reason):
    entry, model_path = tiny
    # 12 examples, batch 4: 3 steps an epoch, 9 in all; stopping after step 4 is mid-epoch 2.
    spec = resolved_spec(n_epochs=3, batch_size=4, n_checkpoints=0, seed=11)
    rows = demo_rows[:12]

    whole = run_training(spec, entry, model_path, rows, None, tmp_path / "whole", RecordingReporter())

    first = RecordingReporter(stop_after=4, stop_with=reason)
    with pytest.raises(TrainingStopped) as stopped:
        run_training(spec, entry, model_path, rows, None, tmp_path / "first", first)
    assert stopped.value.reason == reason and stopped.value.step == 5
    ((step, folder),) = first.resume_checkpoints
    assert step == 5 and (folder / "optimizer.pt").is_file() and (folder / "rng_state.pth").is_file()

    second = RecordingReporter()
    resumed = run_training(spec, entry, model_path, rows, None, tmp_path / "second", second, resume_from=folder)
    assert resumed.steps == whole.steps == 9
    assert [s for s, _ in second.metrics_calls] == list(range(6, 10))
    assert second.metrics_calls[-1][1]["train_loss"] == pytest.approx(whole.metrics_rows[-1]["train_loss"], abs=1e-5)
    assert _max_diff(_weights(resumed.final_dir), _weights(whole.final_dir)) < 1e-5
    assert resumed.trained_tokens == whole.trained_tokens


def test_resume_checkpoints_at_the_configured_interval(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    spec = resolved_spec(n_epochs=2, batch_size=4, n_checkpoints=0)
    reporter = RecordingReporter()
    run_training(spec, entry, model_path, demo_rows[:12], None, tmp_path, reporter, resume_every=ResumeEvery(steps=2))
    # Every 2 steps, but not at the very end (the final model is saved instead).
    assert [s for s, _ in reporter.resume_checkpoints] == [2, 4]
    # Only the newest is kept on local disk; the reporter holds the rest.
    assert sorted(p.name for p in (tmp_path / "trainer").glob("checkpoint-*")) == ["checkpoint-4"]


def test_cancel_saves_nothing(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    reporter = RecordingReporter(stop_after=2, stop_with="cancel")
    with pytest.raises(TrainingStopped) as stopped:
        run_training(
            resolved_spec(n_epochs=2, batch_size=4), entry, model_path, demo_rows[:12], None, tmp_path, reporter
        )
    assert stopped.value.reason == "cancel"
    assert reporter.resume_checkpoints == [] and reporter.checkpoints == []
