"""Train one resolved job with its method's recipe and save the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polytune.config import Settings
from polytune.domain.spec import JobSpec
from polytune.training.callback import ReporterCallback, ResumeEvery
from polytune.catalog.models import CatalogEntry
from polytune.training.recipes import get_recipe
from polytune.training.recipes.common import worker_settings
from polytune.training.reporter import Reporter


class TrainingStopped(Exception):
    """Training stopped because the reporter's stop_request() said so; nothing final was saved.
    `reason` is "cancel", or "pause" / "preempt" (a resume checkpoint was handed over first)."""

    def __init__(self, reason: str, step: int):
        super().__init__(f"stopped for {reason} at step {step}")
        self.reason, self.step = reason, step


# The name the cancel path has always used.
TrainingCancelled = TrainingStopped


@dataclass
class TrainingResult:
    # The model (or peft adapter) with tokenizer and chat template, ready for inference
    # (None on the ranks other than 0 of a multi-worker job).
    final_dir: Path | None
    # One row per step: step, train_loss, train_accuracy, valid_loss, valid_mean_token_accuracy.
    metrics_rows: list[dict[str, Any]]
    trained_tokens: int
    steps: int


def trainer_settings(trainer) -> dict[str, Any]:
    """The settings the trainer actually got (read back from it, not from the spec), so a
    user can see that every hyperparameter they sent reached it."""
    args = trainer.args
    out: dict[str, Any] = {
        k: getattr(args, k, None)
        for k in (
            "num_train_epochs",
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "learning_rate",
            "lr_scheduler_type",
            "warmup_steps",
            "weight_decay",
            "max_grad_norm",
            "max_length",
            "packing",
            "seed",
            "bf16",
            "use_liger_kernel",
        )
    }
    # The threads the worker's torch kernels really run on (a benchmark compares them with plain TRL's).
    import torch

    out["torch_threads"] = torch.get_num_threads()
    # SFT only: a batch flattened into one row with restarting position ids (cpu_path.py).
    out["padding_free"] = bool(getattr(args, "padding_free", False) or getattr(trainer, "padding_free", False))
    # A preference trainer's own settings (DPOConfig has them, SFTConfig does not).
    out.update({k: getattr(args, k) for k in ("beta", "loss_type") if hasattr(args, k)})
    out["gradient_checkpointing"] = getattr(args, "activation_checkpointing", None)
    out["lr_scheduler_type"] = str(getattr(out["lr_scheduler_type"], "value", out["lr_scheduler_type"]))
    peft_config = getattr(trainer.model, "peft_config", None)
    if peft_config:
        lora = next(iter(peft_config.values()))
        modules = lora.target_modules
        out["lora"] = {
            "r": lora.r,
            "alpha": lora.lora_alpha,
            "dropout": lora.lora_dropout,
            "bias": lora.bias,
            "target_modules": sorted(modules) if isinstance(modules, (set, list)) else modules,
        }
    return out


def multi_worker_strategy(
    trainer, spec: JobSpec, model_path: Path | str, fsdp_setting: str
) -> tuple[str, dict[str, Any]] | None:
    """The event saying how a multi-worker job trains (DDP or FSDP, and why); None alone.
    What the trainer actually runs decides the name, the setting's reasoning the why."""
    from polytune.training.sharding import job_strategy

    strategy = job_strategy(fsdp_setting, model_path, lora=spec.adapter.kind == "lora")
    if strategy is None:
        return None
    fsdp = bool(getattr(trainer, "is_fsdp_enabled", False))
    name = "FSDP (the model sharded across the workers)" if fsdp else "DDP (a whole copy of the model per worker)"
    mismatch = "" if fsdp == strategy.fsdp else f", although {strategy.name} was chosen"
    return (
        f"{trainer.args.world_size} workers train with {name}: {strategy.reason}{mismatch}",
        {
            "strategy": "fsdp" if fsdp else "ddp",
            "chosen": strategy.name.lower(),
            "reason": strategy.reason,
            "workers": trainer.args.world_size,
        },
    )


def run_training(
    spec: JobSpec,
    entry: CatalogEntry,
    model_path: Path | str,
    train_rows: list[dict[str, Any]],
    val_rows: list[dict[str, Any]] | None,
    workdir: Path,
    reporter: Reporter,
    *,
    resume_from: Path | None = None,
    resume_every: ResumeEvery = ResumeEvery(),
    settings: Settings | None = None,
) -> TrainingResult:
    """Train `spec` (no "auto" left) from `model_path`, or continue from the trainer checkpoint
    `resume_from` (same optimizer, scheduler, RNG and data position); user-visible checkpoints
    go to workdir/checkpoints. `settings`: the worker's (the runner's), else the process's."""
    settings = worker_settings(settings)
    callback = ReporterCallback(
        reporter,
        checkpoints_dir=workdir / "checkpoints",
        n_checkpoints=spec.hyperparameters.n_checkpoints,
        resume_every=resume_every,
    )
    trainer = get_recipe(spec.method.type).build_trainer(
        spec, entry, model_path, train_rows, val_rows, workdir / "trainer", [callback], settings=settings
    )
    callback.attach(trainer)
    if strategy := multi_worker_strategy(trainer, spec, model_path, settings.fsdp):
        message, data = strategy
        reporter.event(message, data=data)
    reporter.event(
        f"Training started: {trainer.args.num_train_epochs} epochs, {len(trainer.train_dataset)} examples per epoch",
        data=trainer_settings(trainer),
    )
    # Only the newest resume checkpoint is needed on local disk; the reporter keeps it safe.
    trainer.args.save_total_limit = 1
    output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if callback.stopped_for:
        raise TrainingStopped(callback.stopped_for, trainer.state.global_step)
    # Only rank 0 keeps the result (the other ranks take part in gathering a sharded model).
    final_dir = callback.save_final(trainer, workdir / "final")
    # The trainer's own timing, so a benchmark compares like with like against plain TRL.
    reporter.event(
        f"Training finished: {trainer.state.global_step} steps in {output.metrics['train_runtime']:.1f} s",
        data={
            **{k: output.metrics[k] for k in ("train_runtime", "train_steps_per_second")},
            "input_tokens_seen": int(trainer.state.num_input_tokens_seen),
        },
    )
    return TrainingResult(
        final_dir=final_dir,
        metrics_rows=callback.rows,
        trained_tokens=int(trainer.state.num_input_tokens_seen),
        steps=trainer.state.global_step,
    )
