"""The FLUX family's part of image training: a `FluxPipeline`'s transformer learns by flow
matching (what diffusers' `train_dreambooth_lora_flux.py` does; training/image/flow_matching.py):
each step draws σ, mixes `x_t = (1-σ)·x0 + σ·noise`, predicts at timestep σ from the packed
latents and regresses on `noise - x0`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, shifted_latents
from polytune.training.image.flow_matching import flow_matching_loss

if TYPE_CHECKING:
    from diffusers import FluxPipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining

# diffusers' Flux LoRA example's targets: the joint blocks' attention (image and text
# streams) and feed-forward layers; single blocks' attention shares the to_q/k/v names.
FLUX_LORA_TARGETS = [
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
]


class FluxFamily:
    name = "flow matching"
    denoiser = "transformer"  # the pipeline's attribute, and a full fine-tune's sub-folder
    lora_targets = FLUX_LORA_TARGETS

    def load(self, model_path: Path | str, dtype: torch.dtype) -> FluxPipeline:
        from diffusers import FluxPipeline

        return FluxPipeline.from_pretrained(model_path, dtype=dtype)

    def frozen(self, pipe: FluxPipeline) -> list[torch.nn.Module]:
        return [pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.transformer]

    def objective(self, pipe: FluxPipeline) -> str:
        return "flow_matching"

    @torch.no_grad()
    def encode_prompts(
        self, pipe: FluxPipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        embeds, pooled, text_ids = [], [], None
        for i in range(0, len(prompts), batch):
            e, p, text_ids = pipe.encode_prompt(
                prompt=prompts[i : i + batch], prompt_2=None, max_sequence_length=max_sequence_length
            )
            embeds.append(e)
            pooled.append(p)
        return PromptEmbeddings(torch.cat(embeds), torch.cat(pooled), text_ids)

    @torch.no_grad()
    def encode_images(self, pipe: FluxPipeline, images: list[Image.Image]) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed latents (what the FLUX transformer reads) and their position ids."""
        latents = shifted_latents(pipe.vae, images)
        n, c, h, w = latents.shape
        image_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, pipe.vae.device, pipe.vae.dtype)
        return pipe._pack_latents(latents, n, c, h, w), image_ids

    def loss(
        self,
        training: ImageTraining,
        data: CachedData,
        index: torch.Tensor,
        timestep_type: str,
        generator: torch.Generator,
    ) -> torch.Tensor:
        device, dtype = training.accelerator.device, training.weight_dtype
        embeds, pooled = data.prompts.take(index)

        def predict(noisy: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
            return training.denoiser(
                hidden_states=noisy,
                timestep=sigmas.to(dtype),
                guidance=None,
                pooled_projections=pooled.to(device, dtype),
                encoder_hidden_states=embeds.to(device, dtype),
                txt_ids=data.prompts.text_ids.to(device, dtype),
                img_ids=data.image_ids.to(device, dtype),
                return_dict=False,
            )[0]

        return flow_matching_loss(training, data.latents[index], timestep_type, generator, predict)

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import FluxPipeline

        FluxPipeline.save_lora_weights(
            out_dir, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
