"""polytune-tiny-diffusion: a FLUX.1-style text-to-image pipeline built offline.

The same family as the image models Oxen lists (FLUX, Qwen-Image, Z-Image are all
flow-matching transformers): a `FluxTransformer2DModel` denoiser (~0.6 M parameters), a small
`AutoencoderKL`, tiny CLIP and T5 text encoders with hand-written vocabularies, and a
`FlowMatchEulerDiscreteScheduler`. It loads with a stock `FluxPipeline.from_pretrained`.

A random autoencoder can't show learning (the decoding of a red image's latent is not red),
so the build trains the autoencoder for a few hundred steps on generated shapes and sets its
`shift_factor`/`scaling_factor` from the latents' statistics. Everything else stays random:
fine-tuning teaches the denoiser. The build is deterministic (fixed seeds, deterministic
algorithms, vocabularies written out here rather than learned).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from polytune.catalog.builds import cached_build, ensure_built, source_version

if TYPE_CHECKING:
    import torch

TINY_DIFFUSION_NAME = "polytune-tiny-diffusion"
# Bump on any change to what gets built; the source's own hash is part of the build marker too,
# so an edited builder never runs against a stale cached folder.
BUILD_VERSION = "1"

_SEED = 4321
RESOLUTION = 32  # native image size (pixels per side)
CLIP_MAX_LENGTH = 16  # CLIP tokens per prompt (the pipeline reads it from the tokenizer)
T5_MAX_LENGTH = 16  # the pipeline's max_sequence_length: train and sample with the same
# The autoencoder is convolutional: training it on 16x16 crops teaches colours and edges as
# well as full 32x32 images would, at a quarter of the cost.
_VAE_STEPS = 300
_VAE_BATCH = 8
_VAE_TRAIN_SIZE = 16

# The words the hand-written vocabularies know as whole tokens; anything else is spelled out
# character by character (CLIP: byte-level, so any text; T5: printable ASCII, else <unk>).
COLOURS = {  # name -> RGB, also used to draw the autoencoder's training shapes
    "red": (220, 30, 30),
    "green": (30, 180, 50),
    "blue": (30, 60, 220),
    "yellow": (235, 220, 40),
    "orange": (245, 140, 20),
    "purple": (140, 40, 180),
    "pink": (240, 120, 180),
    "cyan": (40, 200, 210),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "gray": (128, 128, 128),
    "brown": (120, 70, 30),
}
SHAPES = ("square", "circle", "triangle", "stripe", "cross", "ring", "dot", "diamond")
_WORDS = (
    *COLOURS,
    *SHAPES,
    "a",
    "an",
    "the",
    "of",
    "on",
    "in",
    "with",
    "and",
    "photo",
    "picture",
    "image",
    "drawing",
    "background",
    "small",
    "big",
    "large",
    "tiny",
    "centered",
    "plain",
    "bright",
    "dark",
)


def builder_version() -> str:
    return source_version(BUILD_VERSION, __file__)


def ensure_tiny_diffusion(models_dir: Path) -> Path:
    """The pipeline folder under `models_dir` (see ensure_built)."""
    return ensure_built(Path(models_dir), TINY_DIFFUSION_NAME, builder_version(), build_tiny_diffusion)


def tiny_diffusion_build() -> Path:
    """polytune-tiny-diffusion's folder in the shared build cache (other tiny pipelines take
    parts of it)."""
    return cached_build(TINY_DIFFUSION_NAME, builder_version(), build_tiny_diffusion)


def build_tiny_diffusion(out_dir: Path) -> None:
    """Write the whole pipeline to `out_dir` (a `FluxPipeline` folder)."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    with deterministic_build():
        clip_tokenizer, t5_tokenizer = build_clip_tokenizer(), build_t5_tokenizer()
        clip, t5 = build_text_encoders(clip_tokenizer, t5_tokenizer)
        vae = build_autoencoder()
        torch.manual_seed(_SEED + 3)
        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=vae.config.latent_channels * 4,
            num_layers=2,
            num_single_layers=4,
            attention_head_dim=16,
            num_attention_heads=4,
            joint_attention_dim=t5.config.d_model,
            pooled_projection_dim=clip.config.hidden_size,
            guidance_embeds=False,
            axes_dims_rope=(4, 6, 6),
        )
        # No resolution-dependent shift: sigmas are used as sampled, in training and sampling alike.
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0, use_dynamic_shifting=False)
        pipe = FluxPipeline(
            scheduler=scheduler,
            vae=vae,
            text_encoder=clip,
            tokenizer=clip_tokenizer,
            text_encoder_2=t5,
            tokenizer_2=t5_tokenizer,
            transformer=transformer,
        )
        pipe.save_pretrained(out_dir)


@contextlib.contextmanager
def deterministic_build():
    """Deterministic algorithms on one thread while building: the result can't depend on how
    work is split between threads, and on a busy machine one thread trains these small
    convolutions several times faster than two."""
    import torch

    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)


def build_clip_tokenizer():
    """CLIP's byte-level BPE over every byte, with each known word merged into one token."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for token in ["<|startoftext|>", "<|endoftext|>", *alphabet, *(c + "</w>" for c in alphabet)]:
        vocab.setdefault(token, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in _WORDS:  # merge left to right: r+e, re+d</w> -> "red</w>"
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for piece in pieces[1:]:
            if (left, piece) not in merges:
                merges.append((left, piece))
            left += piece
            vocab.setdefault(left, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=CLIP_MAX_LENGTH)


def build_t5_tokenizer():
    """A unigram vocabulary: the known words as whole pieces, printable ASCII as fallback."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + w, -3.0) for w in _WORDS]
    pieces += [(chr(c), -8.0) for c in range(33, 127)]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=T5_MAX_LENGTH)


def build_text_encoders(clip_tokenizer, t5_tokenizer):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(_SEED + 1)
    clip = CLIPTextModel(
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
    )
    torch.manual_seed(_SEED + 2)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=t5_tokenizer.pad_token_id,
            eos_token_id=t5_tokenizer.eos_token_id,
            decoder_start_token_id=t5_tokenizer.pad_token_id,
        )
    )
    return clip.eval(), t5.eval()


def build_autoencoder():
    """A small AutoencoderKL (2x down-sampling, 4 latent channels), trained to reconstruct
    generated shapes, with its latent shift and scale set from the encodings' statistics."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(_SEED)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=RESOLUTION,
        use_quant_conv=False,
        use_post_quant_conv=False,
        mid_block_add_attention=False,
        scaling_factor=1.0,
        shift_factor=0.0,
    )
    generator = torch.Generator().manual_seed(_SEED)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    vae.train()
    for _ in range(_VAE_STEPS):
        images = synthetic_images(_VAE_BATCH, generator, size=_VAE_TRAIN_SIZE)
        posterior = vae.encode(images).latent_dist
        # Decoding the mean (as sampling does) learns colours far faster than decoding noisy
        # samples; a light KL keeps the latents in a bounded, smooth range to denoise in.
        recon = vae.decode(posterior.mode()).sample
        loss = torch.nn.functional.mse_loss(recon, images) + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    vae.eval()
    with torch.no_grad():
        latents = vae.encode(synthetic_images(64, generator)).latent_dist.mode()
    shift, std = float(latents.mean()), float(latents.std())
    vae.register_to_config(shift_factor=round(shift, 6), scaling_factor=round(1.0 / std, 6))
    return vae


def synthetic_images(n: int, generator: torch.Generator, size: int = RESOLUTION) -> torch.Tensor:
    """n images in [-1, 1]: a plain background with a shape of another colour, a random mix
    of the named colours and random ones, so the autoencoder learns colour and edges."""
    import torch

    named = torch.tensor(list(COLOURS.values()), dtype=torch.float32) / 127.5 - 1
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij"
    )

    def colour() -> torch.Tensor:
        if torch.rand((), generator=generator) < 0.5:
            return named[torch.randint(len(named), (), generator=generator)]
        return torch.rand(3, generator=generator) * 2 - 1

    out = torch.empty(n, 3, size, size)
    for i in range(n):
        out[i] = colour()[:, None, None]
        cx, cy = (torch.rand(2, generator=generator) * size * 0.6 + size * 0.2).tolist()
        r = float(torch.rand((), generator=generator) * size * 0.3 + size * 0.1)
        kind = int(torch.randint(3, (), generator=generator))
        if kind == 0:
            mask = ((xs - cx).abs() < r) & ((ys - cy).abs() < r)
        elif kind == 1:
            mask = (xs - cx) ** 2 + (ys - cy) ** 2 < r * r
        else:
            mask = ((xs - cx).abs() + (ys - cy).abs()) < r
        out[i] = torch.where(mask, colour()[:, None, None], out[i])
    return out
