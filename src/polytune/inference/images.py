"""Text-to-image generation with diffusers pipelines: a catalog image model as it is, a
fine-tuned LoRA on top of it, or a fully fine-tuned denoiser in its place.

On an accelerator pipelines run there in bf16 (fp16 where bf16 is missing); on a CPU in fp32.
A base model and all its LoRAs share one pipeline: each LoRA is a named adapter of it, made the
active one for its request, so ten LoRAs of FLUX.1 hold one FLUX.1, not ten. A full fine-tune
has its own pipeline. The least recently used pipelines beyond `max_pipelines`, and adapters
beyond `max_adapters` per pipeline, are dropped; each pipeline runs one request at a time under
its own lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image


def placement(*, cuda: bool, bf16: bool) -> tuple[str, str]:
    """Where pipelines run and in which dtype (a torch dtype's name)."""
    if not cuda:
        return "cpu", "float32"
    return "cuda", "bfloat16" if bf16 else "float16"


def _this_machine() -> tuple[str, torch.dtype]:
    import torch

    cuda = torch.cuda.is_available()
    device, dtype = placement(cuda=cuda, bf16=cuda and torch.cuda.is_bf16_supported())
    return device, getattr(torch, dtype)


@dataclass
class _Served:
    pipe: DiffusionPipeline
    lock: threading.Lock = field(default_factory=threading.Lock)
    # model id -> adapter name, least recently used first (LoRAs loaded into this base pipeline)
    adapters: OrderedDict[str, str] = field(default_factory=OrderedDict)


class ImagePipelines:
    def __init__(self, *, threads: int, max_pipelines: int = 4, max_adapters: int = 8):
        self.threads, self.max_pipelines, self.max_adapters = threads, max_pipelines, max_adapters
        self.device, self.dtype = _this_machine()
        self._lock = threading.Lock()
        self._pipes: OrderedDict[str, _Served] = OrderedDict()
        self._adapter_count = 0

    def _pipeline(self, key: str, load) -> _Served:
        with self._lock:
            if key in self._pipes:
                self._pipes.move_to_end(key)
                return self._pipes[key]
        pipe = load()
        pipe.to(self.device)
        pipe.set_progress_bar_config(disable=True)
        with self._lock:
            served = self._pipes.setdefault(key, _Served(pipe))
            while len(self._pipes) > self.max_pipelines:
                self._pipes.popitem(last=False)
        return served

    def _load(self, model_id: str, kind: str, base: Path | str, weights: Path | None) -> tuple[_Served, str | None]:
        """The pipeline for the request, and the adapter to activate in it (None: none)."""
        from diffusers import DiffusionPipeline, FluxTransformer2DModel, UNet2DConditionModel

        if kind == "full":  # the fine-tuned denoiser in the base pipeline's place
            assert weights is not None

            def load_full():
                if (weights / "unet").is_dir():
                    part = {"unet": UNet2DConditionModel.from_pretrained(weights / "unet", dtype=self.dtype)}
                else:
                    part = {
                        "transformer": FluxTransformer2DModel.from_pretrained(weights / "transformer", dtype=self.dtype)
                    }
                return DiffusionPipeline.from_pretrained(base, dtype=self.dtype, **part)

            return self._pipeline(f"full:{model_id}", load_full), None
        served = self._pipeline(f"base:{base}", lambda: DiffusionPipeline.from_pretrained(base, dtype=self.dtype))
        if kind != "lora":
            return served, None
        with served.lock:
            if model_id in served.adapters:
                served.adapters.move_to_end(model_id)
            else:
                with self._lock:
                    self._adapter_count += 1
                    # Model ids hold ':' and '.', which peft's module names cannot.
                    name = f"lora_{self._adapter_count}"
                served.pipe.load_lora_weights(weights, adapter_name=name)
                served.adapters[model_id] = name
                while len(served.adapters) > self.max_adapters:
                    _, old = served.adapters.popitem(last=False)
                    served.pipe.delete_adapters(old)
            return served, served.adapters[model_id]

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

        served, adapter = self._load(model_id, kind, base, weights)
        with served.lock:
            if adapter is not None:
                served.pipe.enable_lora()
                served.pipe.set_adapters([adapter])
            elif served.adapters:
                served.pipe.disable_lora()  # the base model itself, sharing the pipeline
            torch.set_num_threads(self.threads)
            # CPU generators: the same seed draws the same image on any device.
            generators = [torch.Generator().manual_seed(seed + i) for i in range(n)]
            return served.pipe(
                prompt=prompt,
                height=height,
                width=width,
                num_inference_steps=steps,
                num_images_per_prompt=n,
                generator=generators,
                **call_kwargs,
            ).images

    def adapters_of(self, base: Path | str) -> list[str]:
        """The model ids whose LoRAs the pipeline of `base` holds (none if it is not loaded)."""
        with self._lock:
            served = self._pipes.get(f"base:{base}")
        return list(served.adapters) if served is not None else []

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._pipes.pop(f"full:{model_id}", None)
            holding = [s for s in self._pipes.values() if model_id in s.adapters]
        for served in holding:
            with served.lock:
                name = served.adapters.pop(model_id, None)
                if name is not None:
                    served.pipe.delete_adapters(name)
