"""Image serving (inference/images.py): pipelines on an accelerator in bf16 (the decision), and
one base pipeline shared by a base model and its LoRAs, each request drawing exactly what a stock
pipeline holding only its own LoRA (or none) draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polytune.domain.spec import AdapterSpec, Hyperparameters, ImageSpec, JobSpec, LoraSpec
from polytune.inference.images import ImagePipelines, placement
from polytune.training.image.sampling import generate
from polytune.training.recipes.image_lora import build_image_training, save_weights

pytestmark = pytest.mark.slow
CALL = {"max_sequence_length": 16}
PROMPT = "a red square"


def test_placement():
    assert placement(cuda=True, bf16=True) == ("cuda", "bfloat16")
    assert placement(cuda=True, bf16=False) == ("cuda", "float16")  # pre-Ampere: fp16
    assert placement(cuda=False, bf16=False) == ("cpu", "float32")
    assert (ImagePipelines(threads=1).device, ImagePipelines(threads=1).dtype) == ("cpu", torch.float32)


def _lora(entry, path, out, seed: int):
    """A LoRA as the recipe saves it, its up-projections random so it draws unlike the base."""
    spec = JobSpec(
        model=entry.name,
        method="image_generation",
        training_files=["file-test"],
        seed=seed,
        hyperparameters=Hyperparameters(max_steps=1, batch_size=1, learning_rate=1e-3, n_epochs=1),
        adapter=AdapterSpec(kind="lora", lora=LoraSpec(r=4, alpha=4)),
        image=ImageSpec(samples=0),
    )
    training = build_image_training(spec, entry, path)
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in training.denoiser.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return save_weights(training, out)


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def _stock(path, lora=None) -> np.ndarray:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(path)
    pipe.set_progress_bar_config(disable=True)
    if lora is not None:
        pipe.load_lora_weights(lora)
    return _pixels(generate(pipe, PROMPT, seed=5, size=32, steps=4, **CALL))


def test_a_base_model_and_its_loras_share_one_pipeline(tiny_diffusion, tmp_path):
    entry, path = tiny_diffusion
    a, b = _lora(entry, path, tmp_path / "a", 1), _lora(entry, path, tmp_path / "b", 2)
    pipes = ImagePipelines(threads=1)

    def draw(model_id, kind, weights=None) -> np.ndarray:
        images = pipes.generate(
            model_id, kind, path, weights, PROMPT, n=1, width=32, height=32, steps=4, seed=5, call_kwargs=CALL
        )
        return _pixels(images[0])

    base1, a1, b1, base2, a2 = (
        draw("base", "base"),
        draw("ft:a", "lora", a),
        draw("ft:b", "lora", b),
        draw("base", "base"),
        draw("ft:a", "lora", a),
    )
    assert len(pipes._pipes) == 1 and pipes.adapters_of(path) == ["ft:b", "ft:a"]
    # Each request draws what a pipeline holding only its weights draws: no LoRA leaks into another.
    for got, want in ((base1, _stock(path)), (a1, _stock(path, a)), (b1, _stock(path, b))):
        assert np.abs(got - want).max() <= 1
    assert np.array_equal(base1, base2) and np.array_equal(a1, a2)
    assert np.abs(a1 - base1).max() > 1 and np.abs(a1 - b1).max() > 1
    pipes.forget("ft:a")
    assert pipes.adapters_of(path) == ["ft:b"]
    assert np.abs(draw("ft:b", "lora", b) - b1).max() <= 1


def test_a_full_fine_tune_has_its_own_pipeline(tiny_diffusion, tmp_path):
    from diffusers import DiffusionPipeline, FluxTransformer2DModel

    entry, path = tiny_diffusion
    spec = JobSpec(
        model=entry.name,
        method="image_generation",
        training_files=["file-test"],
        seed=1,
        hyperparameters=Hyperparameters(max_steps=1, batch_size=1, learning_rate=1e-3, n_epochs=1),
        adapter=AdapterSpec(kind="full"),
        image=ImageSpec(samples=0),
    )
    training = build_image_training(spec, entry, path)
    torch.manual_seed(3)
    with torch.no_grad():
        for p in training.denoiser.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    full = save_weights(training, tmp_path / "full")
    pipes = ImagePipelines(threads=1)
    got = pipes.generate(
        "ft:full", "full", path, full, PROMPT, n=1, width=32, height=32, steps=4, seed=5, call_kwargs=CALL
    )
    stock = DiffusionPipeline.from_pretrained(
        path, transformer=FluxTransformer2DModel.from_pretrained(full / "transformer")
    )
    stock.set_progress_bar_config(disable=True)
    want = _pixels(generate(stock, PROMPT, seed=5, size=32, steps=4, **CALL))
    assert np.abs(_pixels(got[0]) - want).max() <= 1 and np.abs(want - _stock(path)).max() > 1
    assert list(pipes._pipes) == ["full:ft:full"] and pipes.adapters_of(path) == []
