"""The UNet family's part of image training: a `StableDiffusionPipeline`'s UNet learns to
predict the noise (`epsilon`) or the velocity (`v_prediction`), whichever its scheduler
config's `prediction_type` names, at discrete timesteps — what diffusers'
`train_text_to_image_lora.py` does: a `DDPMScheduler` built from the pipeline's scheduler
config noises the latents (`add_noise`) and gives the velocity target (`get_velocity`).

`timestep_type` maps onto the discrete timesteps through the same draws as flow matching:
u in (0, 1) is drawn as training/image/timesteps.py defines it (uniform, logit-normal, or
uniform with the bell weight over u) and the timestep is ⌊u·T⌋ of the T training timesteps,
so u plays σ's part (near 0 almost the image, near 1 almost pure noise)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, to_tensor
from polytune.training.image.timesteps import loss_weights, sample_sigmas

if TYPE_CHECKING:
    from diffusers import DDPMScheduler, StableDiffusionPipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining

# diffusers' text-to-image LoRA example's targets: the attention projections of every
# transformer block in the UNet (self- and cross-attention).
UNET_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
PREDICTION_TYPES = ("epsilon", "v_prediction")


class UNetFamily:
    name = "UNet"
    denoiser = "unet"
    lora_targets = UNET_LORA_TARGETS

    def __init__(self) -> None:
        self.noise_scheduler: DDPMScheduler | None = None

    def load(self, model_path: Path | str, dtype: torch.dtype) -> StableDiffusionPipeline:
        from diffusers import StableDiffusionPipeline

        pipe = StableDiffusionPipeline.from_pretrained(
            model_path, dtype=dtype, safety_checker=None, requires_safety_checker=False
        )
        self.use_scheduler_of(pipe)
        return pipe

    def use_scheduler_of(self, pipe) -> None:
        """Train with a DDPMScheduler of the pipeline's scheduler config (its betas and
        prediction_type), as diffusers' examples do."""
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        prediction = self.noise_scheduler.config.prediction_type
        if prediction not in PREDICTION_TYPES:
            raise ValueError(f"the scheduler's prediction_type is {prediction!r}; polytune trains {PREDICTION_TYPES}")

    def frozen(self, pipe: StableDiffusionPipeline) -> list[torch.nn.Module]:
        return [pipe.vae, pipe.text_encoder, pipe.unet]

    def objective(self, pipe: StableDiffusionPipeline) -> str:
        return self.noise_scheduler.config.prediction_type

    @torch.no_grad()
    def encode_prompts(
        self, pipe: StableDiffusionPipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        """The text encoder's last hidden states, padded to the tokenizer's length (the
        pipeline's own limit; max_sequence_length is a FLUX setting)."""
        embeds = [
            pipe.encode_prompt(prompts[i : i + batch], pipe.device, 1, False)[0] for i in range(0, len(prompts), batch)
        ]
        return PromptEmbeddings(torch.cat(embeds))

    @torch.no_grad()
    def encode_images(
        self, pipe: StableDiffusionPipeline, images: list[Image.Image], batch: int = 16
    ) -> tuple[torch.Tensor, None]:
        """Latents scaled as Stable Diffusion's pipelines expect them (never shifted)."""
        vae = pipe.vae
        out = []
        for i in range(0, len(images), batch):
            pixels = to_tensor(images[i : i + batch]).to(vae.device, vae.dtype)
            # The mean of the latent distribution: the same latent for an image at every step.
            out.append(vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor)
        return torch.cat(out), None

    def loss(
        self,
        training: ImageTraining,
        data: CachedData,
        index: torch.Tensor,
        timestep_type: str,
        generator: torch.Generator,
    ) -> torch.Tensor:
        device, dtype = training.accelerator.device, training.weight_dtype
        scheduler = self.noise_scheduler
        x0 = data.latents[index].to(device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype).to(device)
        u = sample_sigmas(timestep_type, len(index), generator)
        steps = scheduler.config.num_train_timesteps
        timesteps = (u * steps).long().clamp(0, steps - 1).to(device)
        noisy = scheduler.add_noise(x0, noise, timesteps)
        target = (
            noise if scheduler.config.prediction_type == "epsilon" else scheduler.get_velocity(x0, noise, timesteps)
        )
        pred = self.predict(training, noisy.to(dtype), timesteps, data, index)
        per_example = ((pred.float() - target.float()) ** 2).mean(dim=(1, 2, 3))
        return (loss_weights(timestep_type, u).to(device) * per_example).mean()

    def predict(
        self,
        training: ImageTraining,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        data: CachedData,
        index: torch.Tensor,
    ) -> torch.Tensor:
        """The UNet's output for the noisy latents of the examples `index` (SDXL adds its
        micro-conditioning here)."""
        device, dtype = training.accelerator.device, training.weight_dtype
        embeds, _ = data.prompts.take(index)
        return training.denoiser(noisy, timesteps, encoder_hidden_states=embeds.to(device, dtype), return_dict=False)[0]

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import StableDiffusionPipeline
        from diffusers.utils import convert_state_dict_to_diffusers

        StableDiffusionPipeline.save_lora_weights(
            out_dir, unet_lora_layers=convert_state_dict_to_diffusers(layers), unet_lora_adapter_metadata=metadata
        )
