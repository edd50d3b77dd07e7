"""The image recipe's training loop, one for every model family: the family's loss on cached
latents, reporting through the same Reporter as the text trainer's callback (metrics,
progress, checkpoints, stop requests, resume checkpoints), plus samples every `sample_every`
steps.

One step's loss is the family's (training/image/flux.py: flow matching at a drawn σ;
training/image/unet.py: noise or velocity prediction at a drawn discrete timestep), each
example's squared error weighted by the timestep_type's weight (training/image/timesteps.py).
Randomness (batch order, noise, timesteps) comes from generators seeded by the job's seed and
the step, so a run resumed from a checkpoint continues exactly as it would have."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from polytune.domain.spec import ImageSpec, JobSpec
from polytune.training.callback import ResumeEvery
from polytune.training.divergence import check_loss
from polytune.training.image.data import cache_dataset
from polytune.catalog.pipelines import call_kwargs
from polytune.training.image.sampling import plan_samples, write_samples
from polytune.training.image.savings import EncoderPlacement, text_encoder_plan
from polytune.catalog.models import CatalogEntry
from polytune.training.recipes.image_lora import ImageTraining, build_image_training, save_weights
from polytune.training.reporter import Reporter

_STATE_FILE = "polytune_state.json"


@dataclass
class ImageResult:
    final_dir: Path
    metrics_rows: list[dict[str, Any]]
    steps: int
    runtime: float
    sample_steps: list[int] = field(default_factory=list)


class Stopped(Exception):
    def __init__(self, reason: str, step: int):
        super().__init__(f"stopped for {reason} at step {step}")
        self.reason, self.step = reason, step


def sampling_steps(image: ImageSpec, steps: int) -> list[int]:
    """The steps that produce samples: every multiple of sample_every up to `steps`."""
    if image.samples <= 0:
        return []
    return list(range(image.sample_every, steps + 1, image.sample_every))


def checkpoint_steps(image: ImageSpec, steps: int, n_checkpoints: int) -> list[int]:
    """The last n_checkpoints of the sampling steps and the final step, so each checkpoint
    (but perhaps the final one) sits beside samples of the same weights."""
    if n_checkpoints <= 0:
        return []
    candidates = sorted({*range(image.sample_every, steps + 1, image.sample_every), steps})
    return candidates[-n_checkpoints:]


class _Batches:
    """Each epoch a fresh permutation of the examples (seeded by seed and epoch); micro-batch
    m takes positions m·B .. m·B+B-1 of the concatenated epochs."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._perms: dict[int, torch.Tensor] = {}

    def __call__(self, micro_step: int) -> torch.Tensor:
        out = []
        for pos in range(micro_step * self.batch_size, (micro_step + 1) * self.batch_size):
            epoch = pos // self.n
            if epoch not in self._perms:
                self._perms = {
                    epoch: torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 1009 + epoch))
                }
            out.append(self._perms[epoch][pos % self.n])
        return torch.stack(out)


def run_image_training(
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    rows: list[dict[str, Any]],
    workdir: Path,
    reporter: Reporter,
    *,
    resume_from: Path | None = None,
    resume_every: ResumeEvery = ResumeEvery(),
    threads: int = 0,
) -> ImageResult:
    """Train `spec` (resolved: steps, batch size, learning rate, seed) on image/caption rows.
    Samples go to workdir/samples/step-<n>, checkpoints to workdir/checkpoints/step-<n>,
    the final weights to workdir/final."""
    if threads:
        torch.set_num_threads(threads)
    hp, image = spec.hyperparameters, spec.image or ImageSpec()
    steps, batch_size, accumulate = hp.max_steps, int(hp.batch_size), hp.gradient_accumulation_steps or 1
    if not steps or spec.seed is None:
        raise ValueError("an image job needs max_steps and a seed (run resolve_auto first)")
    size = image.resolution or entry.image_size
    training = build_image_training(spec, entry, model_path)
    reporter.event(f"Caching latents and prompt embeddings of {len(rows)} images at {size}x{size}")
    data = cache_dataset(training.family, training.pipe, rows, size=size, max_sequence_length=entry.max_sequence_length)
    plan = plan_samples(
        data.captions,
        count=image.samples,
        prompts=image.sample_prompts,
        seeds=image.sample_seeds,
        job_seed=spec.seed,
        size=size,
        steps=image.sample_steps or entry.sample_steps,
        call_kwargs=call_kwargs(training.family.name, entry),
    )
    sample_at = set(sampling_steps(image, steps))
    # The prompts are cached: the text encoders leave the accelerator (training/image/savings.py).
    on_accelerator = training.accelerator.device.type != "cpu"
    encoders = EncoderPlacement(
        training.pipe,
        text_encoder_plan(on_accelerator=on_accelerator, samples=bool(sample_at and plan.count)),
        training.accelerator.device,
    )
    encoders.after_caching()
    checkpoint_at = set(checkpoint_steps(image, steps, hp.n_checkpoints))
    start = 0
    if resume_from is not None:
        training.accelerator.load_state(str(resume_from))
        start = json.loads((resume_from / _STATE_FILE).read_text())["step"]
    reporter.event(
        f"Training started: {steps} steps of {batch_size} x {accumulate} images, "
        f"{len(rows)} examples, timestep_type {image.timestep_type}",
        data={
            "max_steps": steps,
            "batch_size": batch_size,
            "timestep_type": image.timestep_type,
            "resolution": size,
            "sample_every": image.sample_every,
            "samples": plan.count,
            "sample_prompts": plan.prompts,
            "seed": spec.seed,
            "text_encoders": encoders.plan,
            **training.settings(),
        },
    )
    batches = _Batches(len(data), batch_size, spec.seed)
    rows_out: list[dict[str, Any]] = []
    samples_done: list[int] = []
    latest: dict[str, float] = {}
    last_resume = (start, time.monotonic())
    began = time.monotonic()
    training.denoiser.train()
    for step in range(start + 1, steps + 1):
        losses = []
        for micro in range((step - 1) * accumulate, step * accumulate):
            generator = torch.Generator().manual_seed(spec.seed * 7919 + micro)
            with training.accelerator.accumulate(training.denoiser):
                loss = training.family.loss(training, data, batches(micro), image.timestep_type, generator)
                training.accelerator.backward(loss)
                if training.accelerator.sync_gradients:
                    training.accelerator.clip_grad_norm_(
                        training.params, hp.max_grad_norm if hp.max_grad_norm is not None else 1.0
                    )
                training.optimizer.step()
                training.optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
        train_loss = sum(losses) / len(losses)
        check_loss("train loss", train_loss, step)
        latest = {"train_loss": train_loss}
        reporter.metrics(step, latest)
        rows_out.append({"step": step, "train_loss": train_loss})
        request = reporter.stop_request()
        if request is not None:
            if request != "cancel":
                _save_resume(training, workdir, step, reporter)
            raise Stopped(request, step)
        per_step = (time.monotonic() - began) / (step - start)
        reporter.progress(
            trained_steps=step,
            total_steps=steps,
            trained_tokens=0,
            estimated_finish=int(time.time() + per_step * (steps - step)),
        )
        if step in sample_at:
            training.denoiser.eval()
            t0 = time.monotonic()
            with encoders.sampling():
                files = write_samples(training.pipe, plan, workdir / "samples" / f"step-{step}")
            seconds = time.monotonic() - t0
            training.denoiser.train()
            reporter.samples(step, files, plan.prompts, seconds=seconds)
            samples_done.append(step)
        if step in checkpoint_at and step < steps:
            reporter.checkpoint(step, save_weights(training, workdir / "checkpoints" / f"step-{step}"), latest)
        last_step, last_time = last_resume
        if step < steps and (
            (resume_every.steps and step - last_step >= resume_every.steps)
            or (resume_every.seconds and time.monotonic() - last_time >= resume_every.seconds)
        ):
            _save_resume(training, workdir, step, reporter)
            last_resume = (step, time.monotonic())
    runtime = time.monotonic() - began
    trained = steps - start
    reporter.event(
        f"Training finished: {trained} steps in {runtime:.1f} s",
        data={"train_runtime": runtime, "train_steps_per_second": trained / runtime if runtime else None},
    )
    final_dir = save_weights(training, workdir / "final")
    if steps in checkpoint_at:
        reporter.checkpoint(steps, save_weights(training, workdir / "checkpoints" / f"step-{steps}"), latest)
    return ImageResult(
        final_dir=final_dir, metrics_rows=rows_out, steps=steps, runtime=runtime, sample_steps=samples_done
    )


def _save_resume(training: ImageTraining, workdir: Path, step: int, reporter: Reporter) -> None:
    """The accelerator's state (trainable weights, optimizer) and the step: all a restarted
    worker needs, since every step's randomness derives from the seed and the step."""
    folder = workdir / "resume" / f"step-{step}"
    training.accelerator.save_state(str(folder))
    (folder / _STATE_FILE).write_text(json.dumps({"step": step}))
    reporter.resume_checkpoint(step, folder)
