"""polytune-tiny-qwenimage: a Qwen-Image-style text-to-image pipeline built offline.

Qwen-Image's shape at toy size: a `QwenImageTransformer2DModel` (MMDiT, 2 blocks of 4 heads ×
16), a random tiny `Qwen2_5_VLForConditionalGeneration` text encoder (a one-block vision tower
it never uses for text) with the hand-written Qwen tokenizer of tests/tiny_builders/tiny_qwen_text.py (on
which Qwen-Image's prompt template's system part is 34 tokens, the count the pipeline drops),
a random `AutoencoderKLQwenImage` (4 latent channels, 2× down-sampling) whose `latents_mean`/
`latents_std` are measured on generated shapes, and a `FlowMatchEulerDiscreteScheduler` without
resolution shift. The autoencoder is not trained: the build shows the family trains and reloads,
not that colours are learned. It loads with a stock `QwenImagePipeline.from_pretrained`.
"""

from __future__ import annotations

from pathlib import Path

from polytune.catalog.builds import ensure_built, source_version
from polytune.catalog.tiny_diffusion import builder_version as diffusion_builder_version
from polytune.catalog.tiny_diffusion import deterministic_build, synthetic_images

TINY_QWENIMAGE_NAME = "polytune-tiny-qwenimage"
BUILD_VERSION = "1"
_SEED = 7117
TEXT_MAX_LENGTH = 128


def builder_version() -> str:
    # tiny_diffusion.py is no sibling here (it lives in polytune/catalog/): its version stands in.
    return source_version(BUILD_VERSION, __file__, "tiny_qwen_text.py", after=diffusion_builder_version())


def ensure_tiny_qwenimage(models_dir: Path) -> Path:
    return ensure_built(Path(models_dir), TINY_QWENIMAGE_NAME, builder_version(), build_tiny_qwenimage)


def build_tiny_qwenimage(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `QwenImagePipeline` folder)."""
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImagePipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from tests.tiny_builders.tiny_qwen_text import build_qwen_tokenizer

    with deterministic_build():
        tokenizer = build_qwen_tokenizer(TEXT_MAX_LENGTH)
        torch.manual_seed(_SEED)
        vocab = len(tokenizer)
        text_encoder = Qwen2_5_VLForConditionalGeneration(
            Qwen2_5_VLConfig(
                text_config=dict(
                    vocab_size=vocab,
                    hidden_size=32,
                    intermediate_size=64,
                    num_hidden_layers=2,
                    num_attention_heads=4,
                    num_key_value_heads=2,
                    max_position_embeddings=1024,
                    # Qwen2.5-VL's multimodal rotary sections, summing to half the head size
                    rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
                    bos_token_id=None,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    tie_word_embeddings=False,
                ),
                vision_config=dict(
                    depth=1,
                    hidden_size=16,
                    intermediate_size=32,
                    num_heads=2,
                    out_hidden_size=32,
                    fullatt_block_indexes=[0],
                ),
                # Image/video placeholders outside the text vocabulary: prompts are text only.
                image_token_id=vocab,
                video_token_id=vocab + 1,
                vision_start_token_id=vocab + 2,
            )
        ).eval()
        torch.manual_seed(_SEED + 1)
        vae = AutoencoderKLQwenImage(
            base_dim=16,
            z_dim=4,
            dim_mult=[1, 2],
            num_res_blocks=1,
            temperal_downsample=[False],
            latents_mean=[0.0] * 4,
            latents_std=[1.0] * 4,
        ).eval()
        with torch.no_grad():
            images = synthetic_images(32, torch.Generator().manual_seed(_SEED))[:, :, None]
            latents = vae.encode(images).latent_dist.mode()
        vae.register_to_config(
            latents_mean=[round(float(v), 6) for v in latents.mean(dim=(0, 2, 3, 4))],
            latents_std=[round(float(v), 6) for v in latents.std(dim=(0, 2, 3, 4))],
        )
        torch.manual_seed(_SEED + 2)
        transformer = QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=4 * 4,
            out_channels=4,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=4,
            joint_attention_dim=text_encoder.config.text_config.hidden_size,
            axes_dims_rope=(4, 6, 6),
        )
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
        pipe = QwenImagePipeline(
            scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
        )
        pipe.save_pretrained(out_dir)
