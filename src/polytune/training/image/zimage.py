"""The Z-Image family's part of image training: a `ZImagePipeline`'s transformer learns by flow
matching (training/image/flow_matching.py), as diffusers' `train_dreambooth_lora_z_image.py`
does it. Z-Image's own conventions, the pipeline's and the example's alike:

- the transformer takes lists, one entry per image: latents [c, 1, h, w] (a frame axis) and the
  prompt's embeddings at its own length (the text model's penultimate hidden states of the
  chat-templated prompt, padding dropped);
- its time runs the other way: it is given 1 - σ (0 = pure noise), and it predicts the
  negated velocity, so the loss regresses `-output` on `noise - x0`;
- latents are the autoencoder's, shifted and scaled as FLUX's are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, shifted_latents
from polytune.training.image.flow_matching import flow_matching_loss

if TYPE_CHECKING:
    from diffusers import ZImagePipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining

# The attention projections of every block (noise and context refiners and the main layers).
ZIMAGE_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]


class ZImageFamily:
    name = "flow matching"
    denoiser = "transformer"
    lora_targets = ZIMAGE_LORA_TARGETS

    def load(self, model_path: Path | str, dtype: torch.dtype) -> ZImagePipeline:
        from diffusers import ZImagePipeline

        return ZImagePipeline.from_pretrained(model_path, dtype=dtype)

    def frozen(self, pipe: ZImagePipeline) -> list[torch.nn.Module]:
        return [pipe.vae, pipe.text_encoder, pipe.transformer]

    def objective(self, pipe: ZImagePipeline) -> str:
        return "flow_matching"

    @torch.no_grad()
    def encode_prompts(
        self, pipe: ZImagePipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        sequences: list[torch.Tensor] = []
        for i in range(0, len(prompts), batch):
            embeds, _ = pipe.encode_prompt(
                prompt=list(prompts[i : i + batch]),
                device=pipe.device,
                do_classifier_free_guidance=False,
                max_sequence_length=max_sequence_length,
            )
            sequences += [e.cpu() for e in embeds]
        return PromptEmbeddings.padded(sequences)

    def encode_images(self, pipe: ZImagePipeline, images: list[Image.Image]) -> tuple[torch.Tensor, None]:
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
        embeds, _ = data.prompts.take(index)
        mask = data.prompts.mask[index]
        captions = [e[m].to(device, dtype) for e, m in zip(embeds, mask)]

        def predict(noisy: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
            out = training.denoiser(
                list(noisy.unsqueeze(2).unbind(0)), (1.0 - sigmas).to(dtype), captions, return_dict=False
            )[0]
            return -torch.stack(out).squeeze(2)

        return flow_matching_loss(training, data.latents[index], timestep_type, generator, predict)

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import ZImagePipeline

        ZImagePipeline.save_lora_weights(
            out_dir, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
