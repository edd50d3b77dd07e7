"""polytune-tiny-zimage: a Z-Image-style text-to-image pipeline built offline.

Z-Image's shape at toy size: a `ZImageTransformer2DModel` (single-stream DiT: 2 layers and one
noise and one context refiner, 4 heads × 16), a random tiny `Qwen3Model` text encoder (its
penultimate hidden states are the prompt) with the hand-written Qwen tokenizer of
tests/tiny_builders/tiny_qwen_text.py, polytune-tiny-diffusion's trained autoencoder (4 latent channels,
shifted and scaled as Z-Image does) and a `FlowMatchEulerDiscreteScheduler` without resolution
shift. It loads with a stock `ZImagePipeline.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

from polytune.catalog.builds import ensure_built, source_version
from polytune.catalog.tiny_diffusion import (
    builder_version as diffusion_builder_version,
    deterministic_build,
    tiny_diffusion_build,
)

TINY_ZIMAGE_NAME = "polytune-tiny-zimage"
BUILD_VERSION = "1"
_SEED = 2626
TEXT_MAX_LENGTH = 64  # the chat template adds ~20 tokens around a prompt


def builder_version() -> str:
    return source_version(BUILD_VERSION, __file__, "tiny_qwen_text.py", after=diffusion_builder_version())


def ensure_tiny_zimage(models_dir: Path) -> Path:
    return ensure_built(Path(models_dir), TINY_ZIMAGE_NAME, builder_version(), build_tiny_zimage)


def build_tiny_zimage(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `ZImagePipeline` folder)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Model

    from tests.tiny_builders.tiny_qwen_text import build_qwen_tokenizer, qwen3_config

    shared = tiny_diffusion_build()
    with deterministic_build():
        vae = AutoencoderKL.from_pretrained(shared / "vae")
        tokenizer = build_qwen_tokenizer(TEXT_MAX_LENGTH)
        torch.manual_seed(_SEED)
        text_encoder = Qwen3Model(qwen3_config(tokenizer)).eval()
        torch.manual_seed(_SEED + 1)
        transformer = ZImageTransformer2DModel(
            all_patch_size=(2,),
            all_f_patch_size=(1,),
            in_channels=vae.config.latent_channels,
            dim=64,
            n_layers=2,
            n_refiner_layers=1,
            n_heads=4,
            n_kv_heads=4,
            cap_feat_dim=text_encoder.config.hidden_size,
            axes_dims=[4, 6, 6],
            axes_lens=[256, 64, 64],
        )
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
        pipe = ZImagePipeline(
            scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
        )
        pipe.save_pretrained(out_dir)
