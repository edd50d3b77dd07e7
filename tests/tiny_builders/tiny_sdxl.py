"""polytune-tiny-sdxl: a Stable-Diffusion-XL-style text-to-image pipeline built offline.

SDXL's shape at toy size: a `UNet2DConditionModel` with SDXL's `text_time` added conditioning
(pooled text embedding + six micro-conditioning numbers), two CLIP text encoders (the first is
polytune-tiny-diffusion's, the second a random `CLIPTextModelWithProjection` with the same
tokenizer), and polytune-tiny-diffusion's trained autoencoder, so learning shows in colours.
Sampling uses the DDIM scheduler polytune-tiny-unet uses. It loads with a stock
`StableDiffusionXLPipeline.from_pretrained`; built in a few seconds after polytune-tiny-diffusion.
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

TINY_SDXL_NAME = "polytune-tiny-sdxl"
BUILD_VERSION = "1"
_SEED = 9151
TIME_EMBED_DIM = 8  # per micro-conditioning number (SDXL: 256)


def builder_version() -> str:
    return source_version(BUILD_VERSION, __file__, after=diffusion_builder_version())


def ensure_tiny_sdxl(models_dir: Path) -> Path:
    return ensure_built(Path(models_dir), TINY_SDXL_NAME, builder_version(), build_tiny_sdxl)


def build_tiny_sdxl(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `StableDiffusionXLPipeline` folder)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    shared = tiny_diffusion_build()
    with deterministic_build():
        vae = AutoencoderKL.from_pretrained(shared / "vae")
        vae.register_to_config(shift_factor=None)  # SDXL's pipelines scale latents, never shift them
        tokenizer = CLIPTokenizer.from_pretrained(shared / "tokenizer")
        text_encoder = CLIPTextModel.from_pretrained(shared / "text_encoder")
        torch.manual_seed(_SEED)
        text_encoder_2 = CLIPTextModelWithProjection(
            CLIPTextConfig(
                vocab_size=len(tokenizer),
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=CLIP_MAX_LENGTH,
                projection_dim=32,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        ).eval()
        torch.manual_seed(_SEED + 1)
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=vae.config.latent_channels,
            out_channels=vae.config.latent_channels,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            block_out_channels=(32, 64),
            layers_per_block=1,
            attention_head_dim=8,
            norm_num_groups=8,
            # Both encoders' sequences side by side, as SDXL's UNet reads them.
            cross_attention_dim=text_encoder.config.hidden_size + text_encoder_2.config.hidden_size,
            addition_embed_type="text_time",
            addition_time_embed_dim=TIME_EMBED_DIM,
            projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + text_encoder_2.config.projection_dim,
        )
        scheduler = DDIMScheduler(
            num_train_timesteps=1000,
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
            timestep_spacing="trailing",
            prediction_type="epsilon",
        )
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=text_encoder,
            text_encoder_2=text_encoder_2,
            tokenizer=tokenizer,
            tokenizer_2=tokenizer,
            unet=unet,
            scheduler=scheduler,
            add_watermarker=False,
        )
        pipe.save_pretrained(out_dir)
