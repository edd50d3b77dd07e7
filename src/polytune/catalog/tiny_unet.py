"""polytune-tiny-unet: a Stable-Diffusion-style text-to-image pipeline built offline.

The UNet family (Stable Diffusion 1.x/2.x): a small `UNet2DConditionModel` denoiser that
predicts noise (`epsilon`) or velocity (`v_prediction`) at discrete timesteps, with the
autoencoder, CLIP text encoder and tokenizer of polytune-tiny-diffusion (taken from its build,
so the autoencoder is trained once for both). The folder's scheduler is a `DDIMScheduler`
(fast, deterministic sampling in 20 steps); training builds a `DDPMScheduler` from its config,
as diffusers' text-to-image examples do with Stable Diffusion's folders. It loads with a stock
`StableDiffusionPipeline.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

from polytune.catalog.builds import ensure_built, source_version
from polytune.catalog.tiny_diffusion import (
    builder_version as diffusion_builder_version,
    deterministic_build,
    tiny_diffusion_build,
)

TINY_UNET_NAME = "polytune-tiny-unet"
BUILD_VERSION = "1"
_SEED = 8765


def builder_version() -> str:
    """This builder's source and the build it takes its autoencoder and text encoder from."""
    return source_version(BUILD_VERSION, __file__, after=diffusion_builder_version())


def ensure_tiny_unet(models_dir: Path) -> Path:
    return ensure_built(Path(models_dir), TINY_UNET_NAME, builder_version(), build_tiny_unet)


def build_tiny_unet(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `StableDiffusionPipeline` folder)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    shared = tiny_diffusion_build()
    with deterministic_build():
        vae = AutoencoderKL.from_pretrained(shared / "vae")
        # Stable Diffusion's pipelines scale latents but never shift them; centring is left to
        # the denoiser (the tiny autoencoder's mean is small next to its spread).
        vae.register_to_config(shift_factor=None)
        text_encoder = CLIPTextModel.from_pretrained(shared / "text_encoder")
        tokenizer = CLIPTokenizer.from_pretrained(shared / "tokenizer")
        torch.manual_seed(_SEED)
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
            cross_attention_dim=text_encoder.config.hidden_size,
        )
        # Stable Diffusion's noise schedule; "trailing" spacing makes 20 sampling steps start
        # at the last training timestep (pure noise), as the schedule's training did.
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
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        pipe.save_pretrained(out_dir)
