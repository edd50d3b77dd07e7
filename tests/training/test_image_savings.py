"""Image jobs' accelerator memory savings (training/image/savings.py): the decisions, and the
recipe training on after the text encoders are dropped, and with gradient checkpointing on."""

from __future__ import annotations

import math

import pytest
import torch

from polytune.catalog.models import CatalogEntry
from polytune.domain.spec import AdapterSpec, Hyperparameters, ImageSpec, JobSpec, LoraSpec
from polytune.training.image.data import cache_dataset
from polytune.training.image.loop import run_image_training
from polytune.training.image.savings import (
    EncoderPlacement,
    gradient_checkpointing,
    text_encoder_names,
    text_encoder_plan,
)
from polytune.training.recipes.image_lora import build_image_training
from tests.training.image_support import one_colour_rows
from tests.training.support import RecordingReporter


def test_the_decisions():
    assert gradient_checkpointing(on_accelerator=True) and not gradient_checkpointing(on_accelerator=False)
    # No samples to draw: the encoders have no use after caching, wherever the job runs.
    assert text_encoder_plan(on_accelerator=True, samples=False) == "free"
    assert text_encoder_plan(on_accelerator=False, samples=False) == "free"
    # Samples: off the accelerator between them; on a CPU there is nowhere cheaper to put them.
    assert text_encoder_plan(on_accelerator=True, samples=True) == "park"
    assert text_encoder_plan(on_accelerator=False, samples=True) == "keep"


def _spec(entry: CatalogEntry, samples: int) -> JobSpec:
    return JobSpec(
        model=entry.name,
        method="image_generation",
        training_files=["file-test"],
        seed=3,
        hyperparameters=Hyperparameters(
            max_steps=3, batch_size=2, learning_rate=1e-3, n_epochs=1, learning_rate_multiplier=1.0, n_checkpoints=0
        ),
        adapter=AdapterSpec(kind="lora", lora=LoraSpec(r=4, alpha=4)),
        image=ImageSpec(timestep_type="linear", sample_every=3, samples=samples),
    )


def _sdxl(tmp_path):
    from tests.tiny_builders.tiny_sdxl import ensure_tiny_sdxl

    path = ensure_tiny_sdxl(tmp_path / "models")
    return CatalogEntry(name="tiny-sdxl", source=str(path), kind="image", image_size=32, max_sequence_length=16), path


@pytest.mark.parametrize("family", ["flux", "sdxl"])
def test_a_job_without_samples_drops_its_text_encoders_and_trains_on(family, tiny_diffusion, tmp_path):
    # SDXL's step reads the text encoder's projection size: from the cached embedding, not the encoder.
    entry, path = tiny_diffusion if family == "flux" else _sdxl(tmp_path)
    reporter = RecordingReporter()
    run_image_training(_spec(entry, 0), entry, path, one_colour_rows("red", 1), tmp_path / "job", reporter, threads=1)
    started = next(d for m, d in zip(reporter.events, reporter.event_data) if m.startswith("Training started"))
    assert started is not None
    assert (started["text_encoders"], started["gradient_checkpointing"]) == ("free", False)  # a CPU
    assert [s for s, _ in reporter.metrics_calls] == [1, 2, 3]
    assert all(math.isfinite(m["train_loss"]) for _, m in reporter.metrics_calls)


def test_free_empties_the_pipeline_and_keep_leaves_it(tiny_diffusion):
    entry, path = tiny_diffusion
    training = build_image_training(_spec(entry, 0), entry, path)
    assert text_encoder_names(training.pipe) == ["text_encoder", "text_encoder_2"]
    EncoderPlacement(training.pipe, "keep", torch.device("cpu")).after_caching()
    assert text_encoder_names(training.pipe) == ["text_encoder", "text_encoder_2"]
    EncoderPlacement(training.pipe, "free", torch.device("cpu")).after_caching()
    assert text_encoder_names(training.pipe) == [] and training.pipe.text_encoder is None


def test_the_denoiser_trains_with_gradient_checkpointing(tiny_diffusion):
    # What an accelerator turns on; the family's loss and backward must work with it.
    entry, path = tiny_diffusion
    training = build_image_training(_spec(entry, 0), entry, path)
    training.denoiser.enable_gradient_checkpointing()
    assert training.settings()["gradient_checkpointing"] is True
    data = cache_dataset(training.family, training.pipe, one_colour_rows("red", 1), size=32, max_sequence_length=16)
    loss = training.family.loss(training, data, torch.tensor([0, 1]), "linear", torch.Generator().manual_seed(0))
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in training.params)
