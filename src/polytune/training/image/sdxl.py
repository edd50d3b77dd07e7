"""The SDXL family's part of image training: a `StableDiffusionXLPipeline`'s UNet learns as
Stable Diffusion's does (training/image/unet.py: noise or velocity prediction at discrete
timesteps, from the scheduler config's `prediction_type`), with what SDXL adds, as diffusers'
`train_dreambooth_lora_sdxl.py` does it:

- two CLIP text encoders: the penultimate hidden states of both, concatenated, are the
  sequence the UNet attends to; the second one's pooled (projected) output is `text_embeds`;
- micro-conditioning `time_ids` = (original size, crop top-left, target size). Training images
  are scaled and centre-cropped to the square training size before they are encoded, so each
  is given as what the pipeline asks for by default when sampling at that size:
  original = target = (size, size), crop (0, 0)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, to_tensor
from polytune.training.image.unet import UNetFamily

if TYPE_CHECKING:
    from diffusers import StableDiffusionXLPipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining


class SDXLFamily(UNetFamily):
    def load(self, model_path: Path | str, dtype: torch.dtype) -> StableDiffusionXLPipeline:
        from diffusers import StableDiffusionXLPipeline

        # No invisible watermark: samples must show exactly what the weights draw.
        pipe = StableDiffusionXLPipeline.from_pretrained(model_path, dtype=dtype, add_watermarker=False)
        self.use_scheduler_of(pipe)
        return pipe

    def frozen(self, pipe: StableDiffusionXLPipeline) -> list[torch.nn.Module]:
        return [pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.unet]

    @torch.no_grad()
    def encode_prompts(
        self, pipe: StableDiffusionXLPipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        """Both encoders' sequences (concatenated) and the second one's pooled output, padded to
        the tokenizers' own length, exactly as the pipeline encodes a prompt when sampling."""
        embeds, pooled = [], []
        for i in range(0, len(prompts), batch):
            e, _, p, _ = pipe.encode_prompt(
                prompts[i : i + batch], device=pipe.device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            embeds.append(e)
            pooled.append(p)
        return PromptEmbeddings(torch.cat(embeds), torch.cat(pooled))

    @torch.no_grad()
    def encode_images(
        self, pipe: StableDiffusionXLPipeline, images: list[Image.Image], batch: int = 16
    ) -> tuple[torch.Tensor, None]:
        """Latents as the pipeline decodes them: scaled, or normalised by the autoencoder's
        `latents_mean`/`latents_std` where its config has them."""
        vae = pipe.vae
        mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
        out = []
        for i in range(0, len(images), batch):
            pixels = to_tensor(images[i : i + batch]).to(vae.device, vae.dtype)
            latents = vae.encode(pixels).latent_dist.mode()
            if mean is not None and std is not None:
                shape = (1, -1, 1, 1)
                latents = (latents - torch.tensor(mean).view(shape).to(latents)) / torch.tensor(std).view(shape).to(
                    latents
                )
            out.append(latents * vae.config.scaling_factor)
        return torch.cat(out), None

    def predict(
        self,
        training: ImageTraining,
        noisy: torch.Tensor,
        timesteps: torch.Tensor,
        data: CachedData,
        index: torch.Tensor,
    ) -> torch.Tensor:
        device, dtype = training.accelerator.device, training.weight_dtype
        pipe = training.pipe
        embeds, pooled = data.prompts.take(index)
        size = noisy.shape[-1] * pipe.vae_scale_factor
        time_ids = pipe._get_add_time_ids(
            (size, size),
            (0, 0),
            (size, size),
            dtype=dtype,
            # The pooled embedding is text_encoder_2's projection, which may be freed by now.
            text_encoder_projection_dim=pooled.shape[-1],
        )
        conditions = {"text_embeds": pooled.to(device, dtype), "time_ids": time_ids.to(device).repeat(len(index), 1)}
        return training.denoiser(
            noisy,
            timesteps,
            encoder_hidden_states=embeds.to(device, dtype),
            added_cond_kwargs=conditions,
            return_dict=False,
        )[0]

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import StableDiffusionXLPipeline
        from diffusers.utils import convert_state_dict_to_diffusers

        StableDiffusionXLPipeline.save_lora_weights(
            out_dir, unet_lora_layers=convert_state_dict_to_diffusers(layers), unet_lora_adapter_metadata=metadata
        )
