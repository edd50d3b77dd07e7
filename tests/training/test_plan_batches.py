"""The recipes' micro-batch and gradient accumulation: the global batch_size split by what fits a
device (recipes/common.py:plan_batches), the CPU path unchanged."""

from __future__ import annotations

from dataclasses import replace

from polytune.domain.spec import AdapterSpec, Hyperparameters, JobSpec
from polytune.catalog import memory
from polytune.training import sharding
from polytune.training.recipes.common import plan_batches


def _spec(batch: int, accumulation: int | None = None) -> JobSpec:
    return JobSpec(
        model="polytune-tiny",
        training_files=["f"],
        seed=1,
        adapter=AdapterSpec(kind="full"),
        hyperparameters=Hyperparameters(
            n_epochs=1,
            batch_size=batch,
            learning_rate_multiplier=1.0,
            learning_rate=1e-3,
            context_length=512,
            gradient_accumulation_steps=accumulation,
        ),
    )


def test_cpu_jobs_keep_batch_size_per_step(tiny):
    entry, path = tiny
    assert plan_batches(_spec(8), entry, path, fsdp=False, cuda=False) == {
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 8,
        "gradient_accumulation_steps": 1,
    }


def test_on_an_accelerator_the_micro_batch_fits_the_device_and_accumulation_makes_up_the_rest(tiny, monkeypatch):
    entry, path = tiny
    dims = memory.ModelDims.from_config(memory.read_config(path))
    shape = replace(memory.job_shape(_spec(8), adapter_default="full", max_length=1024), micro_batch=0)
    fixed = memory.estimate(dims, shape).total
    per_sequence = memory.estimate(dims, replace(shape, micro_batch=1)).total - fixed
    # A device with room for two and a half sequences beside the model and its optimizer state.
    monkeypatch.setattr(sharding, "device_memory", lambda: int((fixed + 2.5 * per_sequence) / 0.9) + 1)
    plan = plan_batches(_spec(8), entry, path, fsdp=False, cuda=True)
    assert plan["per_device_train_batch_size"] == 2 and plan["gradient_accumulation_steps"] == 4
    # A job that set its own accumulation keeps batch_size per step (and its accumulation).
    own = plan_batches(_spec(8, accumulation=2), entry, path, fsdp=False, cuda=True)
    assert (own["per_device_train_batch_size"], own["gradient_accumulation_steps"]) == (8, 2)
    # A big device: the whole batch in one step.
    monkeypatch.setattr(sharding, "device_memory", lambda: 80 * memory.GiB)
    assert plan_batches(_spec(8), entry, path, fsdp=False, cuda=True)["gradient_accumulation_steps"] == 1
