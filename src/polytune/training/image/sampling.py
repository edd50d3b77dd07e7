"""Samples while training: the pipeline as it is at this step (LoRA active) generates one
image per sample prompt, with a fixed seed per prompt, so the images of successive steps
differ only by what the model learned."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from diffusers import DiffusionPipeline
    from PIL import Image


@dataclass(frozen=True)
class SamplePlan:
    prompts: list[str]
    seeds: list[int]
    size: int
    steps: int
    # What else the pipeline's call takes (family.call_kwargs): FLUX's max_sequence_length, ...
    call_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.prompts)


def plan_samples(
    captions: list[str],
    *,
    count: int,
    prompts: list[str],
    seeds: list[int | None],
    job_seed: int,
    size: int,
    steps: int,
    call_kwargs: dict[str, Any],
) -> SamplePlan:
    """The prompts given, else `count` of the job's captions (distinct ones first, in order)."""
    if not prompts:
        distinct = list(dict.fromkeys(captions))
        prompts = [distinct[i % len(distinct)] for i in range(count)] if distinct else []
    chosen = [seeds[i] if i < len(seeds) and seeds[i] is not None else job_seed + i for i in range(len(prompts))]
    return SamplePlan(prompts=list(prompts), seeds=chosen, size=size, steps=steps, call_kwargs=dict(call_kwargs))


@torch.no_grad()
def generate(
    pipe: DiffusionPipeline, prompt: str, *, seed: int, size: int, steps: int, **call_kwargs: Any
) -> Image.Image:
    generator = torch.Generator(device="cpu").manual_seed(seed)
    # By name: FLUX.2 takes a conditioning image first.
    return pipe(
        prompt=prompt, height=size, width=size, num_inference_steps=steps, generator=generator, **call_kwargs
    ).images[0]


def write_samples(pipe: DiffusionPipeline, plan: SamplePlan, out_dir: Path) -> list[Path]:
    """PNG files `out_dir/<i>.png`, one per planned prompt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (prompt, seed) in enumerate(zip(plan.prompts, plan.seeds)):
        image = generate(pipe, prompt, seed=seed, size=plan.size, steps=plan.steps, **plan.call_kwargs)
        path = out_dir / f"{i}.png"
        image.save(path, format="PNG")
        files.append(path)
    return files
