"""Text-to-image generation with diffusers pipelines: a catalog image model as it is, a
fine-tuned LoRA on top of it, or a fully fine-tuned denoiser in its place.

Pipelines are kept per served model (the least recently used beyond `max_pipelines` are
dropped) and each runs one request at a time under its own lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL import Image


class ImagePipelines:
    def __init__(self, *, threads: int, max_pipelines: int = 4):
        self.threads, self.max_pipelines = threads, max_pipelines
        self._lock = threading.Lock()
        self._pipes: OrderedDict[str, tuple[DiffusionPipeline, threading.Lock]] = OrderedDict()

    def _load(
        self, model_id: str, kind: str, base: Path | str, weights: Path | None
    ) -> tuple[DiffusionPipeline, threading.Lock]:
        with self._lock:
            if model_id in self._pipes:
                self._pipes.move_to_end(model_id)
                return self._pipes[model_id]
        from diffusers import DiffusionPipeline, FluxTransformer2DModel, UNet2DConditionModel

        if kind == "full":  # the fine-tuned denoiser in the base pipeline's place
            if (weights / "unet").is_dir():
                pipe = DiffusionPipeline.from_pretrained(
                    base, unet=UNet2DConditionModel.from_pretrained(weights / "unet")
                )
            else:
                pipe = DiffusionPipeline.from_pretrained(
                    base, transformer=FluxTransformer2DModel.from_pretrained(weights / "transformer")
                )
        else:
            pipe = DiffusionPipeline.from_pretrained(base)
            if kind == "lora":
                pipe.load_lora_weights(weights)
        pipe.set_progress_bar_config(disable=True)
        entry = (pipe, threading.Lock())
        with self._lock:
            self._pipes[model_id] = entry
            while len(self._pipes) > self.max_pipelines:
                self._pipes.popitem(last=False)
        return entry

    def generate(
        self,
        model_id: str,
        kind: str,
        base: Path | str,
        weights: Path | None,
        prompt: str,
        *,
        n: int,
        width: int,
        height: int,
        steps: int,
        seed: int,
        call_kwargs: dict[str, Any],
    ) -> list[Image.Image]:
        import torch

        pipe, lock = self._load(model_id, kind, base, weights)
        with lock:
            torch.set_num_threads(self.threads)
            generators = [torch.Generator().manual_seed(seed + i) for i in range(n)]
            return pipe(
                prompt=prompt,
                height=height,
                width=width,
                num_inference_steps=steps,
                num_images_per_prompt=n,
                generator=generators,
                **call_kwargs,
            ).images

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._pipes.pop(model_id, None)
