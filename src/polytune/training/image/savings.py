"""Accelerator memory an image job does not need to hold while its denoiser trains.

After the prompt embeddings are cached (training/image/data.py) the text encoders (FLUX's T5-XXL
alone is ~9 GB in bf16) have nothing left to do but encode the sample prompts. A job that makes
no samples drops them; one that does keeps them in CPU memory on an accelerator and brings them
back only while it samples. Gradient checkpointing on the transformer/UNet trades recomputation
for activation memory, as diffusers' training examples do on GPUs; on a CPU it only costs time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

TextEncoders = Literal["free", "park", "keep"]


def gradient_checkpointing(on_accelerator: bool) -> bool:
    """Whether the denoiser recomputes activations in its backward pass."""
    return on_accelerator


def text_encoder_plan(*, on_accelerator: bool, samples: bool) -> TextEncoders:
    """free: dropped for good; park: in CPU memory between samples; keep: where they are."""
    if not samples:
        return "free"
    return "park" if on_accelerator else "keep"  # on a CPU, parking would move nothing


def text_encoder_names(pipe) -> list[str]:
    """The pipeline's text encoders present (text_encoder, text_encoder_2, text_encoder_3, ...)."""
    return [name for name, part in pipe.components.items() if name.startswith("text_encoder") and part is not None]


class EncoderPlacement:
    """Applies a plan's text_encoders decision to a pipeline once its prompts are cached."""

    def __init__(self, pipe, plan: TextEncoders, device: torch.device):
        self.pipe, self.plan, self.device = pipe, plan, device
        self.names = text_encoder_names(pipe)

    def after_caching(self) -> None:
        if self.plan == "free":
            for name in self.names:
                setattr(self.pipe, name, None)
        elif self.plan == "park":
            self._move(torch.device("cpu"))
        _release_cached_memory(self.device)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[None]:
        """The text encoders on the pipeline's device for the block (parked ones come back)."""
        if self.plan != "park":
            yield
            return
        self._move(self.device)
        try:
            yield
        finally:
            self._move(torch.device("cpu"))
            _release_cached_memory(self.device)

    def _move(self, device: torch.device) -> None:
        for name in self.names:
            getattr(self.pipe, name).to(device)


def _release_cached_memory(device: torch.device) -> None:
    # PyTorch's caching allocator keeps freed blocks; hand them back so the training step can use them.
    if device.type == "cuda":
        torch.cuda.empty_cache()
