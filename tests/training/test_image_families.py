"""The image_generation recipe on a tiny pipeline of each further family polytune trains (SDXL,
SD3, ...): a few steps through the real recipe give a finite loss and samples at sample_every,
and the LoRA saved in diffusers' format reloads into a fresh stock pipeline of the family's
class and draws the job's own last samples, pixel for pixel (±1), unlike the base pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from polytune.domain.spec import AdapterSpec, Hyperparameters, ImageSpec, JobSpec, LoraSpec
from polytune.catalog.pipelines import check_trainable, pipeline_class_name
from polytune.training.image.flux2 import FLUX2_LORA_TARGETS
from polytune.training.image.loop import run_image_training
from polytune.training.image.qwenimage import QWENIMAGE_LORA_TARGETS
from polytune.training.image.sampling import generate
from polytune.training.image.sd3 import SD3_LORA_TARGETS
from polytune.catalog.models import CatalogEntry
from tests.training.image_support import one_colour_rows
from tests.training.support import RecordingReporter

STEPS, SAMPLE_EVERY, SAMPLE_STEPS = 6, 3, 4


def _sdxl(models):
    from tests.tiny_builders.tiny_sdxl import ensure_tiny_sdxl

    return ensure_tiny_sdxl(models)


def _sd3(models):
    from tests.tiny_builders.tiny_sd3 import ensure_tiny_sd3

    return ensure_tiny_sd3(models)


def _zimage(models):
    from tests.tiny_builders.tiny_zimage import ensure_tiny_zimage

    return ensure_tiny_zimage(models)


def _qwenimage(models):
    from tests.tiny_builders.tiny_qwenimage import ensure_tiny_qwenimage

    return ensure_tiny_qwenimage(models)


def _flux2(models):
    from tests.tiny_builders.tiny_flux2 import ensure_tiny_flux2

    return ensure_tiny_flux2(models)


# family -> (build, pipeline class, objective reported, what its pipeline's call needs besides
# size and steps, LoRA target modules reported)
FAMILIES = {
    "sdxl": (
        _sdxl,
        "StableDiffusionXLPipeline",
        ("UNet", "epsilon"),
        {"guidance_scale": 1.0},
        ["to_k", "to_out.0", "to_q", "to_v"],
    ),
    "sd3": (
        _sd3,
        "StableDiffusion3Pipeline",
        ("flow matching", "flow_matching"),
        {"guidance_scale": 1.0, "max_sequence_length": 16},
        sorted(SD3_LORA_TARGETS),
    ),
    "zimage": (
        _zimage,
        "ZImagePipeline",
        ("flow matching", "flow_matching"),
        {"guidance_scale": 1.0, "max_sequence_length": 64},
        ["to_k", "to_out.0", "to_q", "to_v"],
    ),
    "qwenimage": (
        _qwenimage,
        "QwenImagePipeline",
        ("flow matching", "flow_matching"),
        {"max_sequence_length": 64},
        sorted(QWENIMAGE_LORA_TARGETS),
    ),
    # Sampled at the guidance FLUX.2 [dev] is trained with.
    "flux2": (
        _flux2,
        "Flux2Pipeline",
        ("flow matching", "flow_matching"),
        {"guidance_scale": 3.5, "max_sequence_length": 64},
        sorted(FLUX2_LORA_TARGETS),
    ),
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def trained(request, tmp_path_factory):
    build, class_name, objective, call, targets = FAMILIES[request.param]
    work = tmp_path_factory.mktemp(f"family-{request.param}")
    path = build(work / "models")  # copied from the machine's build cache (built there once)
    entry = CatalogEntry(
        name=f"tiny-{request.param}",
        source=str(path),
        kind="image",
        image_size=32,
        max_sequence_length=call.get("max_sequence_length", 16),
        sample_steps=SAMPLE_STEPS,
        guidance_scale=call.get("guidance_scale"),
    )
    spec = JobSpec(
        model=entry.name,
        method="image_generation",
        training_files=["file-test"],
        seed=3,
        hyperparameters=Hyperparameters(
            max_steps=STEPS, batch_size=2, learning_rate=1e-2, n_epochs=1, learning_rate_multiplier=1.0, n_checkpoints=1
        ),
        adapter=AdapterSpec(kind="lora", lora=LoraSpec(r=8, alpha=16)),
        image=ImageSpec(timestep_type="linear", sample_every=SAMPLE_EVERY, samples=2),
    )
    reporter = RecordingReporter()
    result = run_image_training(spec, entry, path, one_colour_rows("red", repeats=1), work / "job", reporter, threads=1)
    return request.param, path, spec, result, reporter


def test_a_few_steps_train_with_the_familys_objective_and_sample_on_time(trained):
    family, path, _, result, reporter = trained
    _, class_name, objective, _, targets = FAMILIES[family]
    assert pipeline_class_name(path) == class_name
    check_trainable(class_name, family)  # no 400 any more
    started = next(d for m, d in zip(reporter.events, reporter.event_data) if m.startswith("Training started"))
    assert (started["family"], started["objective"]) == objective
    assert started["lora"]["target_modules"] == targets and started["lora"]["alpha"] == 16
    losses = [m["train_loss"] for _, m in reporter.metrics_calls]
    assert len(losses) == STEPS and all(np.isfinite(losses)), losses
    assert [step for step, _, _ in reporter.sample_calls] == [3, 6]
    assert all(
        len(files) == 2 and all(f.read_bytes().startswith(b"\x89PNG") for f in files)
        for _, files, _ in reporter.sample_calls
    )
    assert (result.final_dir / "pytorch_lora_weights.safetensors").is_file()


def test_the_saved_lora_reloads_into_a_stock_pipeline_and_draws_the_jobs_samples(trained):
    import diffusers
    from PIL import Image

    family, path, spec, result, reporter = trained
    _, class_name, _, call, _ = FAMILIES[family]
    pipe = getattr(diffusers, class_name).from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    _, files, prompts = reporter.sample_calls[-1]
    base = generate(pipe, prompts[0], seed=spec.seed, size=32, steps=SAMPLE_STEPS, **call)
    pipe.load_lora_weights(result.final_dir)
    for i, (file, prompt) in enumerate(zip(files, prompts)):
        again = np.asarray(
            generate(pipe, prompt, seed=spec.seed + i, size=32, steps=SAMPLE_STEPS, **call), dtype=np.int16
        )
        diff = np.abs(again - np.asarray(Image.open(file), dtype=np.int16))
        assert diff.max() <= 1, (family, diff.max())
    # ... and the LoRA changed what the base pipeline draws.
    assert np.abs(np.asarray(base, dtype=np.int16) - np.asarray(Image.open(files[0]), dtype=np.int16)).max() > 1
