"""A run whose loss stops being finite fails with an error naming the loss, the step and the
fix, instead of saving a NaN model; and a model with non-finite weights is refused by the
serving backend with a clear 400-kind error, never a crash."""

from __future__ import annotations

import asyncio

import pytest
import torch

from polytune.inference.backend import ModelTarget, NonFiniteModel, SamplingParams
from polytune.training.divergence import TrainingDiverged, check_weights
from polytune.training.train import run_training
from tests.inference.test_hf_backend import BACKENDS
from tests.model_folders import diverged_copy
from tests.training.support import RecordingReporter, resolved_spec


def test_a_diverging_run_fails_naming_the_loss_and_step(tiny, demo_rows, tmp_path):
    entry, model_path = tiny
    # Far above what the API accepts (domain/bounds.py): the training layer must still cope.
    spec = resolved_spec(n_epochs=2, batch_size=4, learning_rate=1e30)
    with pytest.raises(TrainingDiverged) as e:
        run_training(spec, entry, model_path, demo_rows[:8], None, tmp_path, RecordingReporter())
    assert e.value.code == "training_diverged" and e.value.step >= 1
    assert "train loss became nan" in e.value.message.lower() or "weights" in e.value.message
    assert f"step {e.value.step}" in e.value.message and "lower learning_rate_multiplier" in e.value.message
    assert not (tmp_path / "final").exists() or not any((tmp_path / "final").iterdir())


def test_non_finite_weights_are_caught():
    ok, bad = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.tensor([1.0, float("inf")]))
    check_weights([ok], step=3)
    with pytest.raises(TrainingDiverged, match="step 3"):
        check_weights([ok, bad], step=3)


@pytest.mark.parametrize("make_backend", BACKENDS)
def test_serving_a_nan_model_is_a_clear_error_and_others_keep_working(make_backend, tiny, tmp_path):
    # On both backends: with the engine in its own process the error crosses to the server as
    # itself (its class, message and param), so it is still a 400 naming `model`, not a 500.
    _, base_dir = tiny
    broken = diverged_copy(base_dir, tmp_path / "broken")
    backend = make_backend(memory_budget_bytes=1 << 30, max_batch=4)
    params = SamplingParams(max_tokens=3, temperature=1.0, logprobs=2)

    async def run(target, rid):
        return [ev async for evs in backend.generate(rid, target, [1, 2, 3], params) for ev in evs]

    async def main():
        return await asyncio.gather(
            run(ModelTarget("broken", broken), "b"),
            run(ModelTarget("missing", tmp_path / "no-such-model"), "m"),
            run(ModelTarget("polytune-tiny", base_dir), "ok"),
            return_exceptions=True,
        )

    try:
        broken_result, missing_result, ok_result = asyncio.run(main())
    finally:
        backend.close()
    assert isinstance(broken_result, NonFiniteModel), broken_result
    assert broken_result.param == "model" and "broken" in broken_result.message
    assert isinstance(missing_result, Exception) and "no-such-model" in str(missing_result)
    assert len(ok_result) == 3 and all(ev.logprob is not None for ev in ok_result)
