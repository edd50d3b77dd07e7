"""polytune-tiny-flux2: a FLUX.2 [dev]-style text-to-image pipeline built offline.

FLUX.2 [dev]'s shape at toy size: a `Flux2Transformer2DModel` (2 double-stream and 2
single-stream blocks of 4 heads × 16, with FLUX.2 [dev]'s guidance embedding), a random tiny
`Mistral3ForConditionalGeneration` text encoder of 30 layers (the pipeline stacks layers 10, 20
and 30 into the prompt) with the hand-written tokenizer of tests/tiny_builders/tiny_mistral_text.py, an
`AutoencoderKLFlux2` carrying polytune-tiny-diffusion's trained autoencoder (the same encoder
and decoder) whose batch-norm statistics of 2×2-patchified latents — what FLUX.2 normalises
latents by — are measured on generated shapes, and a `FlowMatchEulerDiscreteScheduler` without
resolution shift. It loads with a stock `Flux2Pipeline.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

from polytune.catalog.builds import ensure_built, source_version
from polytune.catalog.tiny_diffusion import (
    builder_version as diffusion_builder_version,
    deterministic_build,
    synthetic_images,
    tiny_diffusion_build,
)

TINY_FLUX2_NAME = "polytune-tiny-flux2"
BUILD_VERSION = "1"
_SEED = 2828
# FLUX.2's system message is ~30 tokens of the tiny vocabulary, the prompt a few more.
TEXT_MAX_LENGTH = 64


def builder_version() -> str:
    return source_version(
        BUILD_VERSION, __file__, "tiny_mistral_text.py", "tiny_qwen_text.py", after=diffusion_builder_version()
    )


def ensure_tiny_flux2(models_dir: Path) -> Path:
    return ensure_built(Path(models_dir), TINY_FLUX2_NAME, builder_version(), build_tiny_flux2)


def build_tiny_flux2(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `Flux2Pipeline` folder)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, Flux2Pipeline, Flux2Transformer2DModel

    from tests.tiny_builders.tiny_mistral_text import build_mistral3, build_mistral_tokenizer

    shared = tiny_diffusion_build()
    with deterministic_build():
        vae = flux2_autoencoder(shared / "vae")
        tokenizer = build_mistral_tokenizer(TEXT_MAX_LENGTH)
        torch.manual_seed(_SEED)
        text_encoder = build_mistral3(tokenizer)
        torch.manual_seed(_SEED + 1)
        transformer = Flux2Transformer2DModel(
            patch_size=1,
            in_channels=vae.config.latent_channels * 4,
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=16,
            num_attention_heads=4,
            joint_attention_dim=3 * text_encoder.config.text_config.hidden_size,
            timestep_guidance_channels=32,
            axes_dims_rope=(4, 4, 4, 4),
            guidance_embeds=True,
        )
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
        pipe = Flux2Pipeline(
            scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
        )
        pipe.save_pretrained(out_dir)


def flux2_autoencoder(kl_folder: Path):
    """An AutoencoderKLFlux2 with the weights of the AutoencoderKL at `kl_folder` (FLUX.2's
    autoencoder is that architecture plus a batch norm over patchified latents), its running
    mean and variance set from the latents of generated shapes."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderKLFlux2, Flux2Pipeline

    kl = AutoencoderKL.from_pretrained(kl_folder)
    keep = (
        "in_channels",
        "out_channels",
        "down_block_types",
        "up_block_types",
        "block_out_channels",
        "layers_per_block",
        "act_fn",
        "latent_channels",
        "norm_num_groups",
        "sample_size",
        "use_quant_conv",
        "use_post_quant_conv",
        "mid_block_add_attention",
    )
    vae = AutoencoderKLFlux2(**{k: kl.config[k] for k in keep}).eval()
    missing, unexpected = vae.load_state_dict(kl.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("bn.") for k in missing), (missing, unexpected)
    with torch.no_grad():
        images = synthetic_images(64, torch.Generator().manual_seed(_SEED))
        latents = Flux2Pipeline._patchify_latents(vae.encode(images).latent_dist.mode())
        vae.bn.running_mean.copy_(latents.mean(dim=(0, 2, 3)))
        vae.bn.running_var.copy_(latents.var(dim=(0, 2, 3)))
    return vae
