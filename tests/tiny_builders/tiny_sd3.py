"""polytune-tiny-sd3: a Stable-Diffusion-3-style text-to-image pipeline built offline.

SD3's shape at toy size: an `SD3Transformer2DModel` (MMDiT, 2 joint blocks of 4 heads × 16),
two CLIP text encoders with projection and a T5 encoder (random, 64 wide so the two CLIPs' 32+32
fit beside each other, as SD3 pads them to T5's width), polytune-tiny-diffusion's tokenizers and
its trained autoencoder (4 latent channels, shifted and scaled as SD3 does), and a
`FlowMatchEulerDiscreteScheduler` without resolution shift. It loads with a stock
`StableDiffusion3Pipeline.from_pretrained`; built in a few seconds after polytune-tiny-diffusion.
"""

from __future__ import annotations

from pathlib import Path

from polytune.catalog.builds import ensure_built, source_version
from polytune.catalog.tiny_diffusion import (
    CLIP_MAX_LENGTH,
    builder_version as diffusion_builder_version,
    deterministic_build,
    tiny_diffusion_build,
)

TINY_SD3_NAME = "polytune-tiny-sd3"
BUILD_VERSION = "1"
_SEED = 3303


def builder_version() -> str:
    return source_version(BUILD_VERSION, __file__, after=diffusion_builder_version())


def ensure_tiny_sd3(models_dir: Path) -> Path:
    return ensure_built(Path(models_dir), TINY_SD3_NAME, builder_version(), build_tiny_sd3)


def build_tiny_sd3(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `StableDiffusion3Pipeline` folder)."""
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        SD3Transformer2DModel,
        StableDiffusion3Pipeline,
    )
    from transformers import (
        AutoTokenizer,
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
    )

    shared = tiny_diffusion_build()
    with deterministic_build():
        vae = AutoencoderKL.from_pretrained(shared / "vae")
        clip_tokenizer = CLIPTokenizer.from_pretrained(shared / "tokenizer")
        t5_tokenizer = AutoTokenizer.from_pretrained(shared / "tokenizer_2")

        def clip(seed: int):
            torch.manual_seed(seed)
            return CLIPTextModelWithProjection(
                CLIPTextConfig(
                    vocab_size=len(clip_tokenizer),
                    hidden_size=32,
                    intermediate_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    max_position_embeddings=CLIP_MAX_LENGTH,
                    projection_dim=32,
                    bos_token_id=clip_tokenizer.bos_token_id,
                    eos_token_id=clip_tokenizer.eos_token_id,
                    pad_token_id=clip_tokenizer.pad_token_id,
                )
            ).eval()

        clip_1, clip_2 = clip(_SEED), clip(_SEED + 1)
        torch.manual_seed(_SEED + 2)
        t5 = T5EncoderModel(
            T5Config(
                vocab_size=len(t5_tokenizer),
                d_model=64,
                d_kv=16,
                d_ff=128,
                num_layers=2,
                num_heads=4,
                relative_attention_num_buckets=8,
                pad_token_id=t5_tokenizer.pad_token_id,
                eos_token_id=t5_tokenizer.eos_token_id,
                decoder_start_token_id=t5_tokenizer.pad_token_id,
            )
        ).eval()
        torch.manual_seed(_SEED + 3)
        transformer = SD3Transformer2DModel(
            sample_size=16,
            patch_size=2,
            in_channels=vae.config.latent_channels,
            out_channels=vae.config.latent_channels,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=4,
            joint_attention_dim=t5.config.d_model,
            caption_projection_dim=64,
            pooled_projection_dim=clip_1.config.projection_dim + clip_2.config.projection_dim,
            pos_embed_max_size=16,
        )
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
        pipe = StableDiffusion3Pipeline(
            transformer=transformer,
            scheduler=scheduler,
            vae=vae,
            text_encoder=clip_1,
            tokenizer=clip_tokenizer,
            text_encoder_2=clip_2,
            tokenizer_2=clip_tokenizer,
            text_encoder_3=t5,
            tokenizer_3=t5_tokenizer,
        )
        pipe.save_pretrained(out_dir)
