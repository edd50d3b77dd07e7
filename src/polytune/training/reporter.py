"""How a running job tells the world what it is doing.

The training code only ever talks to this protocol; `runner.py` gives it the store-backed
implementation, and tests can give it an in-memory one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

# What a dpo job's trainer logs about its implicit rewards (β · log π/π_ref of each side), per
# step, under these names; validation's carry a "valid_" prefix.
PREFERENCE_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins")


class Reporter(Protocol):
    def event(self, message: str, *, level: str = "info", data: dict[str, Any] | None = None) -> None:
        """A plain event a person reads (level: info | warn | error)."""

    def metrics(self, step: int, metrics: dict[str, float]) -> None:
        """One metrics event: step, train_loss, train_mean_token_accuracy, valid_loss, ..."""

    def progress(
        self, *, trained_steps: int, total_steps: int, trained_tokens: int, estimated_finish: int | None
    ) -> None:
        """Where the job is; estimated_finish is a unix time."""

    def checkpoint(self, step: int, local_dir: Path, metrics: dict[str, float]) -> str:
        """Keep a user-visible checkpoint (a saved model folder); returns its model id."""

    def stop_request(self) -> str | None:
        """None to go on. "cancel": stop at once and save nothing. "pause" or "preempt": save a
        resume checkpoint, then stop (the job is paused, or queued again to resume elsewhere)."""

    def samples(self, step: int, files: list[Path], prompts: list[str], *, seconds: float) -> None:
        """Images an image job generated at `step` (PNG files, one per prompt) to show how the
        model changes while it trains; `seconds` is how long generating them took."""

    def resume_checkpoint(self, step: int, trainer_dir: Path) -> None:
        """Keep a full trainer checkpoint (weights, optimizer, scheduler, RNG and data position),
        the one a restarted worker resumes from; older ones may be dropped."""
