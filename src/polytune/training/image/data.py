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
    from PIL import Image

    from polytune.training.image.family import Family


@dataclass
class PromptEmbeddings:
    embeds: torch.Tensor  # [n, tokens, dim]: the sequence the denoiser attends to (T5's, CLIP's)
    pooled: torch.Tensor | None = None  # [n, dim]: CLIP's pooled output (FLUX)
    text_ids: torch.Tensor | None = None  # [tokens, 3]: the positions FLUX gives text tokens
    # [n, tokens] bool: which tokens are the prompt's, where the denoiser takes prompts of their
    # own lengths (Qwen-Image's mask, Z-Image's list of unpadded embeddings)
    mask: torch.Tensor | None = None

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.embeds[index], None if self.pooled is None else self.pooled[index]

    def gather(self, index: torch.Tensor) -> PromptEmbeddings:
        return PromptEmbeddings(*self.take(index), self.text_ids, None if self.mask is None else self.mask[index])

    @staticmethod
    def padded(sequences: list[torch.Tensor]) -> PromptEmbeddings:
        """Prompts of their own lengths ([tokens_i, dim] each) as one zero-padded batch and its mask."""
        embeds = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True)
        mask = torch.zeros(embeds.shape[:2], dtype=torch.bool)
        for i, seq in enumerate(sequences):
            mask[i, : len(seq)] = True
        return PromptEmbeddings(embeds, mask=mask)


@dataclass
class CachedData:
    latents: torch.Tensor  # [n, ...]: as the denoiser reads them (FLUX: packed tokens; UNet: [c, h, w])
    image_ids: torch.Tensor | None  # FLUX: [image tokens, 3]; Qwen-Image: its patch grid (frames, rows, columns)
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
def shifted_latents(vae, images: list[Image.Image], batch: int = 16) -> torch.Tensor:
    """[n, c, h, w]: the autoencoder's mean latent of each image (the same at every step),
    shifted and scaled as the flow-matching pipelines (FLUX, SD3, Z-Image) undo it when they
    decode: (z - shift_factor) · scaling_factor."""
    shift = vae.config.shift_factor or 0.0
    out = []
    for i in range(0, len(images), batch):
        pixels = to_tensor(images[i : i + batch]).to(vae.device, vae.dtype)
        out.append((vae.encode(pixels).latent_dist.mode() - shift) * vae.config.scaling_factor)
    return torch.cat(out)


def cache_dataset(
    family: Family, pipe, rows: list[dict[str, Any]], *, size: int, max_sequence_length: int
) -> CachedData:
    captions = [row["caption"] for row in rows]
    latents, image_ids = family.encode_images(pipe, [load_image(row["image"], size) for row in rows])
    # One embedding per distinct caption, gathered per row.
    distinct = list(dict.fromkeys(captions))
    encoded = family.encode_prompts(pipe, distinct, max_sequence_length)
    where = torch.tensor([distinct.index(c) for c in captions])
    return CachedData(latents=latents, image_ids=image_ids, prompts=encoded.gather(where), captions=captions)
