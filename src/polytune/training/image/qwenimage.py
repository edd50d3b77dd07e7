"""The Qwen-Image family's part of image training: a `QwenImagePipeline`'s transformer learns
by flow matching (training/image/flow_matching.py), as diffusers'
`train_dreambooth_lora_qwen_image.py` does it:

- latents: the video-style autoencoder's (`AutoencoderKLQwenImage`, one frame) mean,
  normalised per channel by its config's `latents_mean`/`latents_std`, packed in 2×2 patches
  (the pipeline's `_pack_latents`), with `img_shapes` telling the transformer the grid;
- text: the Qwen2.5-VL model's last hidden states of the templated prompt (template tokens
  dropped), with the mask of each prompt's own tokens;
- the transformer is given σ as the timestep, and regresses `noise - x0`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, to_tensor
from polytune.training.image.flow_matching import flow_matching_loss

if TYPE_CHECKING:
    from diffusers import QwenImagePipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining

# diffusers' Qwen-Image LoRA example's targets: the joint blocks' attention, both streams.
QWENIMAGE_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0", "add_k_proj", "add_q_proj", "add_v_proj", "to_add_out"]


class QwenImageFamily:
    name = "flow matching"
    denoiser = "transformer"
    lora_targets = QWENIMAGE_LORA_TARGETS

    def load(self, model_path: Path | str, dtype: torch.dtype) -> QwenImagePipeline:
        from diffusers import QwenImagePipeline

        return QwenImagePipeline.from_pretrained(model_path, dtype=dtype)

    def frozen(self, pipe: QwenImagePipeline) -> list[torch.nn.Module]:
        return [pipe.vae, pipe.text_encoder, pipe.transformer]

    def objective(self, pipe: QwenImagePipeline) -> str:
        return "flow_matching"

    @torch.no_grad()
    def encode_prompts(
        self, pipe: QwenImagePipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        """Each prompt at its own length (the pipeline pads a batch to its longest)."""
        sequences: list[torch.Tensor] = []
        for i in range(0, len(prompts), batch):
            embeds, mask = pipe.encode_prompt(
                prompts[i : i + batch], device=pipe.device, max_sequence_length=max_sequence_length
            )
            mask = torch.ones(embeds.shape[:2], dtype=torch.bool) if mask is None else mask.bool()
            sequences += [e[m].cpu() for e, m in zip(embeds, mask)]
        return PromptEmbeddings.padded(sequences)

    @torch.no_grad()
    def encode_images(
        self, pipe: QwenImagePipeline, images: list[Image.Image], batch: int = 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed latents, and the (frames, rows, columns) of their patch grid."""
        vae = pipe.vae
        shape = (1, vae.config.z_dim, 1, 1, 1)
        mean = torch.tensor(vae.config.latents_mean).view(shape)
        std = torch.tensor(vae.config.latents_std).view(shape)
        out = []
        for i in range(0, len(images), batch):
            pixels = to_tensor(images[i : i + batch]).to(vae.device, vae.dtype)[:, :, None]  # one frame
            latents = vae.encode(pixels).latent_dist.mode()
            latents = ((latents - mean.to(latents)) / std.to(latents))[:, :, 0]
            n, c, h, w = latents.shape
            out.append(pipe._pack_latents(latents, n, c, h, w))
        return torch.cat(out), torch.tensor([1, h // 2, w // 2])

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
        # Trim the batch to its longest prompt, as the pipeline's own padding does.
        longest = int(mask.sum(dim=1).max())
        embeds, mask = embeds[:, :longest].to(device, dtype), mask[:, :longest].to(device)
        grid = [[tuple(data.image_ids.tolist())]] * len(index)

        def predict(noisy: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
            return training.denoiser(
                hidden_states=noisy,
                timestep=sigmas.to(dtype),
                encoder_hidden_states=embeds,
                encoder_hidden_states_mask=None if bool(mask.all()) else mask,
                img_shapes=grid,
                return_dict=False,
            )[0]

        return flow_matching_loss(training, data.latents[index], timestep_type, generator, predict)

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import QwenImagePipeline

        QwenImagePipeline.save_lora_weights(
            out_dir, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
