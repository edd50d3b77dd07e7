"""The training set as tensors, computed once before the first step (as diffusers' Flux LoRA
example does with --cache_latents): the autoencoder's latent of every image and the text
encoders' embeddings of every caption. Both encoders are frozen, so each step then costs only
the denoiser's forward and backward pass."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from polytune.data.images import from_data_url

if TYPE_CHECKING:
    from diffusers import FluxPipeline
    from PIL import Image


@dataclass
class PromptEmbeddings:
    embeds: torch.Tensor   # [n, tokens, dim]: T5's sequence
    pooled: torch.Tensor   # [n, dim]: CLIP's pooled output
    text_ids: torch.Tensor  # [tokens, 3]: the positions FLUX gives text tokens

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embeds[index], self.pooled[index]


@dataclass
class CachedData:
    latents: torch.Tensor   # [n, image tokens, channels]: packed, shifted and scaled
    image_ids: torch.Tensor  # [image tokens, 3]
    prompts: PromptEmbeddings
    captions: list[str]

    def __len__(self) -> int:
        return self.latents.shape[0]


def load_image(data_url: str, size: int) -> Image.Image:
    """RGB, the shorter side scaled to `size`, centre-cropped to a square."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(from_data_url(data_url))) as img:
        rgb = img.convert("RGB")
    return ImageOps.fit(rgb, (size, size), method=Image.Resampling.BICUBIC)


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """[n, 3, h, w] in [-1, 1], as the autoencoder takes them."""
    import numpy as np

    arr = np.stack([np.asarray(img, dtype=np.float32) for img in images]) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def encode_prompts(pipe: FluxPipeline, prompts: list[str], max_sequence_length: int,
                   batch: int = 64) -> PromptEmbeddings:
    embeds, pooled, text_ids = [], [], None
    for i in range(0, len(prompts), batch):
        e, p, text_ids = pipe.encode_prompt(prompt=prompts[i:i + batch], prompt_2=None,
                                            max_sequence_length=max_sequence_length)
        embeds.append(e)
        pooled.append(p)
    return PromptEmbeddings(torch.cat(embeds), torch.cat(pooled), text_ids)


@torch.no_grad()
def encode_images(pipe: FluxPipeline, images: list[Image.Image], batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Packed latents (what the FLUX transformer reads) and their position ids."""
    vae = pipe.vae
    out = []
    for i in range(0, len(images), batch):
        pixels = to_tensor(images[i:i + batch]).to(vae.device, vae.dtype)
        # The mean of the latent distribution: the same latent for an image at every step.
        latents = vae.encode(pixels).latent_dist.mode()
        latents = (latents - vae.config.shift_factor) * vae.config.scaling_factor
        n, c, h, w = latents.shape
        out.append(pipe._pack_latents(latents, n, c, h, w))
    _, c, h, w = latents.shape
    image_ids = pipe._prepare_latent_image_ids(1, h // 2, w // 2, vae.device, vae.dtype)
    return torch.cat(out), image_ids


def cache_dataset(pipe: FluxPipeline, rows: list[dict[str, Any]], *, size: int,
                  max_sequence_length: int) -> CachedData:
    captions = [row["caption"] for row in rows]
    latents, image_ids = encode_images(pipe, [load_image(row["image"], size) for row in rows])
    # One embedding per distinct caption, gathered per row.
    distinct = list(dict.fromkeys(captions))
    encoded = encode_prompts(pipe, distinct, max_sequence_length)
    where = torch.tensor([distinct.index(c) for c in captions])
    prompts = PromptEmbeddings(encoded.embeds[where], encoded.pooled[where], encoded.text_ids)
    return CachedData(latents=latents, image_ids=image_ids, prompts=prompts, captions=captions)
