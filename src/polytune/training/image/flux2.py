"""The FLUX.2 family's part of image training: a `Flux2Pipeline`'s transformer learns by flow
matching (training/image/flow_matching.py), as diffusers' `train_dreambooth_lora_flux2.py`
does it:

- latents: the autoencoder's (`AutoencoderKLFlux2`) mean, cut into 2×2 patches (4× the
  channels, the pipeline's `_patchify_latents`), normalised by the autoencoder's batch-norm
  running statistics, and flattened to one token per patch (`_pack_latents`) with 4-D
  (time, row, column, layer) position ids (`_prepare_latent_ids`);
- text: the Mistral-3 encoder's hidden states of layers 10, 20 and 30 side by side, of the
  prompt after FLUX.2's system message (`encode_prompt`), with 4-D text position ids;
- the transformer is given σ as the timestep and, FLUX.2 [dev] being guidance-distilled, the
  example's guidance 3.5; it regresses `noise - x0` (on the packed tokens: the same squared
  errors as on the unpacked latents, in another order)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polytune.training.image.data import CachedData, PromptEmbeddings, to_tensor
from polytune.training.image.flow_matching import flow_matching_loss

if TYPE_CHECKING:
    from diffusers import Flux2Pipeline
    from PIL import Image

    from polytune.training.recipes.image_lora import ImageTraining

# diffusers' FLUX.2 LoRA example's default targets: the double-stream blocks' image attention
# (the single-stream blocks fuse q, k, v and the MLP into one projection, `to_qkv_mlp_proj`).
FLUX2_LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
# The example's --guidance_scale default: what the guidance embedding of FLUX.2 [dev] is given.
TRAINING_GUIDANCE = 3.5


class Flux2Family:
    name = "flow matching"
    denoiser = "transformer"
    lora_targets = FLUX2_LORA_TARGETS

    def load(self, model_path: Path | str, dtype: torch.dtype) -> Flux2Pipeline:
        from diffusers import Flux2Pipeline

        return Flux2Pipeline.from_pretrained(model_path, dtype=dtype)

    def frozen(self, pipe: Flux2Pipeline) -> list[torch.nn.Module]:
        return [pipe.vae, pipe.text_encoder, pipe.transformer]

    def objective(self, pipe: Flux2Pipeline) -> str:
        return "flow_matching"

    @torch.no_grad()
    def encode_prompts(
        self, pipe: Flux2Pipeline, prompts: list[str], max_sequence_length: int, batch: int = 64
    ) -> PromptEmbeddings:
        """Every prompt padded to max_sequence_length, as the pipeline encodes them (the
        transformer attends to the padding too); one set of text ids, the same for every prompt."""
        embeds, text_ids = [], None
        for i in range(0, len(prompts), batch):
            e, ids = pipe.encode_prompt(
                prompts[i : i + batch], device=pipe.device, max_sequence_length=max_sequence_length
            )
            embeds.append(e.cpu())
            text_ids = ids[0].cpu()
        return PromptEmbeddings(torch.cat(embeds), text_ids=text_ids)

    @torch.no_grad()
    def encode_images(
        self, pipe: Flux2Pipeline, images: list[Image.Image], batch: int = 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed, normalised patch latents [n, patches, 4·channels] and their position ids."""
        vae = pipe.vae
        mean = vae.bn.running_mean.view(1, -1, 1, 1)
        std = torch.sqrt(vae.bn.running_var.view(1, -1, 1, 1) + vae.config.batch_norm_eps)
        out, ids = [], None
        for i in range(0, len(images), batch):
            pixels = to_tensor(images[i : i + batch]).to(vae.device, vae.dtype)
            patches = pipe._patchify_latents(vae.encode(pixels).latent_dist.mode())
            patches = (patches - mean.to(patches)) / std.to(patches)
            ids = pipe._prepare_latent_ids(patches)[0]
            out.append(pipe._pack_latents(patches).cpu())
        return torch.cat(out), ids.cpu()

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
        n = len(index)
        embeds = embeds.to(device, dtype)
        txt_ids = data.prompts.text_ids.to(device).expand(n, -1, -1)
        img_ids = data.image_ids.to(device).expand(n, -1, -1)
        # FLUX.2 [klein] has no guidance embedding: it is given none.
        guided = training.pipe.transformer.config.guidance_embeds
        guidance = torch.full((n,), TRAINING_GUIDANCE, device=device) if guided else None

        def predict(noisy: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
            return training.denoiser(
                hidden_states=noisy,
                timestep=sigmas.to(dtype),
                guidance=guidance,
                encoder_hidden_states=embeds,
                txt_ids=txt_ids,
                img_ids=img_ids,
                return_dict=False,
            )[0]

        return flow_matching_loss(training, data.latents[index], timestep_type, generator, predict)

    def save_lora(self, out_dir: Path, layers: dict[str, Any], metadata: dict[str, Any]) -> None:
        from diffusers import Flux2Pipeline

        Flux2Pipeline.save_lora_weights(
            out_dir, transformer_lora_layers=layers, transformer_lora_adapter_metadata=metadata
        )
