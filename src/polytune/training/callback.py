"""The bridge from a transformers Trainer to polytune's Reporter."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from polytune.training import distributed
from polytune.training.divergence import check_loss, check_weights
from polytune.training.reporter import PREFERENCE_METRICS, Reporter
from polytune.training.saving import save_trained


@dataclass(frozen=True)
class ResumeEvery:
    """How often to save a resume checkpoint while training: whichever comes first.
    0 turns a bound off; both 0 means only when pausing or preempted."""

    steps: int = 0
    seconds: float = 0.0


# GRPO's logged values (TRL's names and the grader reward function's) -> metrics event names.
_REWARD_LOGS = {
    "loss": "train_loss",
    "reward": "reward",
    "reward_std": "reward_std",
    "reward_min": "reward_min",
    "reward_max": "reward_max",
    "kl": "kl",
    "completions/mean_length": "completion_length",
    "grader_errors": "grader_errors",
    "learning_rate": "learning_rate",
}


def reward_metrics(logs: dict[str, float]) -> dict[str, float]:
    """A reinforcement step's (or evaluation's, as valid_*) reward metrics from TRL's logs."""
    evaluating = "eval_reward" in logs
    prefix, out_prefix = ("eval_", "valid_") if evaluating else ("", "")
    out = {}
    for key, name in _REWARD_LOGS.items():
        if prefix + key in logs:
            out[("valid_loss" if name == "train_loss" else out_prefix + name) if evaluating else name] = logs[
                prefix + key
            ]
    for key, value in logs.items():
        if key.startswith(prefix + "sub_reward/"):
            out[f"{out_prefix}sub_reward_{key.split('/', 1)[1]}"] = value
    return out


class ReporterCallback(TrainerCallback):
    """Reports metrics, progress and checkpoints, saves resume checkpoints, and stops training
    when asked to.

    After a run, `rows` holds one metrics row per step and `stopped_for` says whether the
    reporter's stop_request() ended it ("cancel", "pause" or "preempt"), else None.
    """

    def __init__(
        self,
        reporter: Reporter,
        *,
        checkpoints_dir: Path,
        n_checkpoints: int,
        resume_every: ResumeEvery = ResumeEvery(),
    ):
        self.reporter = reporter
        self.checkpoints_dir = checkpoints_dir
        self.n_checkpoints = n_checkpoints
        self.resume_every = resume_every
        self.stopped_for: str | None = None
        self._first_step = 0
        self._last_resume_save = (0, time.monotonic())
        self._rows: dict[int, dict[str, Any]] = {}
        self._latest: dict[str, float] = {}
        self._started = 0.0
        # Saved at an epoch end but reported only once that epoch's evaluation (which the
        # Trainer runs after on_epoch_end) has been logged, so its metrics include it.
        self._pending_checkpoint: tuple[int, Path] | None = None
        # The last epoch's checkpoint is the final model: saved once, after training (save_final),
        # not inside the training loop and then again as the final model.
        self._final_epoch_step: int | None = None
        # The trainer this callback serves (attach): epoch checkpoints are saved through it, as
        # every rank must take part in saving a sharded (FSDP) model.
        self.trainer = None

    def attach(self, trainer) -> None:
        self.trainer = trainer

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [self._rows[step] for step in sorted(self._rows)]

    @property
    def cancelled(self) -> bool:
        return self.stopped_for == "cancel"

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._started = time.monotonic()
        self._first_step = state.global_step  # above 0 when resuming
        self._last_resume_save = (state.global_step, time.monotonic())

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        # With several workers, rank 0's request is every rank's (distributed.py).
        request = distributed.agree(self.reporter.stop_request())
        if request is not None:
            self.stopped_for = request
            control.should_training_stop = True
            control.should_evaluate = False
            # The Trainer saves right after this callback, in the same step, when asked to.
            control.should_save = request != "cancel"
            return
        if self._resume_save_due(state.global_step) and state.global_step < state.max_steps:
            control.should_save = True
        per_step = (time.monotonic() - self._started) / max(1, state.global_step - self._first_step)
        remaining = per_step * (state.max_steps - state.global_step)
        self.reporter.progress(
            trained_steps=state.global_step,
            total_steps=state.max_steps,
            trained_tokens=int(state.num_input_tokens_seen),
            estimated_finish=int(time.time() + remaining),
        )

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        # A pause or preemption saves this step, so its metrics belong to the record.
        if self.cancelled or not logs:
            return
        if "reward" in logs or "eval_reward" in logs:
            metrics = reward_metrics(logs)
        elif "loss" in logs:
            # The scheduler's rate for this step (warm-up and decay visible step by step).
            metrics = {
                "train_loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"),
                "train_mean_token_accuracy": logs.get("mean_token_accuracy"),
                **{k: logs.get(k) for k in PREFERENCE_METRICS},
            }
        elif "eval_loss" in logs:
            metrics = {
                "valid_loss": logs["eval_loss"],
                "valid_mean_token_accuracy": logs.get("eval_mean_token_accuracy"),
                **{f"valid_{k}": logs.get(f"eval_{k}") for k in PREFERENCE_METRICS},
            }
        else:
            return  # the end-of-training summary repeats what was already reported
        metrics = {k: v for k, v in metrics.items() if v is not None}
        self.reporter.metrics(state.global_step, metrics)
        for name in ("train_loss", "valid_loss"):
            check_loss(name.replace("_", " "), metrics.get(name), state.global_step)
        self._latest.update(metrics)
        row = self._rows.setdefault(
            state.global_step,
            {
                "step": state.global_step,
                "train_loss": None,
                "train_accuracy": None,
                "valid_loss": None,
                "valid_mean_token_accuracy": None,
                "learning_rate": None,
            },
        )
        row.update({("train_accuracy" if k == "train_mean_token_accuracy" else k): v for k, v in metrics.items()})

    def _resume_save_due(self, step: int) -> bool:
        last_step, last_time = self._last_resume_save
        every = self.resume_every
        return bool(
            (every.steps and step - last_step >= every.steps)
            or (every.seconds and time.monotonic() - last_time >= every.seconds)
        )

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        # The Trainer has just written output_dir/checkpoint-<step> with optimizer, scheduler,
        # RNG and trainer state: hand it over before anything else can happen to the worker.
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        # Another rank hands over even a folder it wrote nothing into: rank 0 waits for every
        # rank's part (an empty one then) before it records the checkpoint.
        if folder.is_dir() or distributed.rank() > 0:
            self.reporter.resume_checkpoint(state.global_step, folder)
        self._last_resume_save = (state.global_step, time.monotonic())

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._report_pending_checkpoint()

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.stopped_for or self.n_checkpoints <= 0:
            return
        epoch = round(state.epoch)
        if epoch <= args.num_train_epochs - self.n_checkpoints:
            return
        if state.global_step >= state.max_steps:
            self._final_epoch_step = state.global_step
            return
        out_dir = save_trained(self.trainer, self.checkpoints_dir / f"step-{state.global_step}")
        if out_dir is not None:  # rank 0
            self._pending_checkpoint = (state.global_step, out_dir)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.stopped_for is None:
            model = kwargs.get("model")
            if model is not None:
                check_weights(model.parameters(), state.global_step)
            self._report_pending_checkpoint()

    def save_final(self, trainer, final_dir: Path) -> Path | None:
        """Save the trained model once (every rank calls this): as the last epoch's checkpoint
        when that epoch asked for one, reported as such, else into final_dir. Returns the folder
        (None on the ranks other than 0)."""
        step = self._final_epoch_step
        if step is None or step != trainer.state.global_step:
            return save_trained(trainer, final_dir)
        out_dir = save_trained(trainer, self.checkpoints_dir / f"step-{step}")
        if out_dir is not None:
            self.reporter.checkpoint(step, out_dir, dict(self._latest))
        return out_dir

    def _report_pending_checkpoint(self) -> None:
        if self._pending_checkpoint is None:
            return
        step, out_dir = self._pending_checkpoint
        self._pending_checkpoint = None
        self.reporter.checkpoint(step, out_dir, dict(self._latest))
