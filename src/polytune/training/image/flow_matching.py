"""The flow-matching step every transformer family shares (FLUX, SD3, Qwen-Image, Z-Image,
FLUX.2), as diffusers' DreamBooth LoRA examples for them do it: draw σ per example, mix
`x_t = (1-σ)·x0 + σ·noise`, let the family's denoiser predict from x_t at σ, and regress on the
velocity `noise - x0`, each example's squared error weighted by the timestep_type's weight.

What differs by family is only the denoiser call (`predict`): how it takes σ (FLUX: σ;
SD3: σ·1000; ...), the latents' layout and the text conditioning."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from polytune.training.image.timesteps import loss_weights, sample_sigmas

if TYPE_CHECKING:
    from polytune.training.recipes.image_lora import ImageTraining

# predict(noisy latents in the compute dtype, σ per example) -> the predicted velocity
Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def flow_matching_loss(
    training: ImageTraining, x0: torch.Tensor, timestep_type: str, generator: torch.Generator, predict: Predict
) -> torch.Tensor:
    device = training.accelerator.device
    x0 = x0.to(device)
    # Noise first, then σ, from the step's generator: the order fixes what a seed draws.
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(device)
    sigmas = sample_sigmas(timestep_type, len(x0), generator).to(device)
    s = sigmas.view(-1, *([1] * (x0.ndim - 1)))
    noisy = (1.0 - s) * x0 + s * noise
    pred = predict(noisy.to(training.weight_dtype), sigmas)
    per_example = ((pred.float() - (noise - x0).float()) ** 2).flatten(1).mean(dim=1)
    return (loss_weights(timestep_type, sigmas).to(device) * per_example).mean()
