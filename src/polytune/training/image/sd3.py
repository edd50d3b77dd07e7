"""The Stable Diffusion 3 family's part of image training: a `StableDiffusion3Pipeline`'s
MMDiT transformer learns by flow matching (training/image/flow_matching.py), as diffusers'
`train_dreambooth_lora_sd3.py` does it: latents unpacked ([c, h, w]), shifted and scaled by the
autoencoder's factors; the timestep is σ·1000 (the scheduler's timesteps, as the pipeline passes
them); the text is the two CLIP encoders' penultimate states side by side, zero-padded to T5's
width, followed by T5's states, and the pooled projections of both CLIP encoders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, shifted_latents
from polytune.training.image.flow_matching import flow_matching_loss

if TYPE_CHECKING:
    from diffusers import StableDiffusion3Pipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining

# diffusers' SD3 LoRA example's targets: the attention of the joint blocks' image and text streams.
SD3_LORA_TARGETS = [
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "attn.to_k",
    "attn.to_out.0",
    "attn.to_q",
    "attn.to_v",
]


class SD3Family:
    name = "flow matching"
    denoiser = "transformer"
    lora_targets = SD3_LORA_TARGETS

    def load(self, model_path: Path | str, dtype: torch.dtype) -> StableDiffusion3Pipeline:
        from diffusers import StableDiffusion3Pipeline

        return StableDiffusion3Pipeline.from_pretrained(model_path, dtype=dtype)

    def frozen(self, pipe: StableDiffusion3Pipeline) -> list[torch.nn.Module]:
        return [
            m
            for m in (pipe.vae, pipe.text_encoder, pipe.text_encoder_2, pipe.text_encoder_3, pipe.transformer)
            if m is not None
        ]  # SD3 may be used without its T5 (text_encoder_3 None: zeros)

    def objective(self, pipe: StableDiffusion3Pipeline) -> str:
        return "flow_matching"

    @torch.no_grad()
    def encode_prompts(
        self, pipe: StableDiffusion3Pipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        embeds, pooled = [], []
        for i in range(0, len(prompts), batch):
            e, _, p, _ = pipe.encode_prompt(
                prompt=prompts[i : i + batch],
                prompt_2=None,
                prompt_3=None,
                device=pipe.device,
                do_classifier_free_guidance=False,
                max_sequence_length=max_sequence_length,
            )
            embeds.append(e)
            pooled.append(p)
        return PromptEmbeddings(torch.cat(embeds), torch.cat(pooled))

    def encode_images(self, pipe: StableDiffusion3Pipeline, images: list[Image.Image]) -> tuple[torch.Tensor, None]:
        return shifted_latents(pipe.vae, images), None

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
        train_steps = training.pipe.scheduler.config.num_train_timesteps

        def predict(noisy: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
            return training.denoiser(
                hidden_states=noisy,
                timestep=(sigmas * train_steps).to(dtype),
                encoder_hidden_states=embeds.to(device, dtype),
                pooled_projections=pooled.to(device, dtype),
                return_dict=False,
            )[0]

        return flow_matching_loss(training, data.latents[index], timestep_type, generator, predict)

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import StableDiffusion3Pipeline

        StableDiffusion3Pipeline.save_lora_weights(
            out_dir, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
