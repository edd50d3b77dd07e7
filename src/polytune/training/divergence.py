"""A run whose loss or weights stop being finite has diverged: it fails with an error that
names the loss and the step and says what to change, instead of saving a NaN model that then
cannot be served."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from polytune.training import distributed


class TrainingDiverged(Exception):
    """The job fails with this `code`, `message` and `param` (runner.py reads the three)."""

    code = "training_diverged"
    param = "hyperparameters.learning_rate_multiplier"

    def __init__(self, what: str, step: int):
        self.message = (
            f"Training diverged: the {what} at step {step}. The learning rate is too high for "
            "this model and data; create the job again with a lower learning_rate_multiplier "
            "(or learning_rate)."
        )
        super().__init__(self.message)
        self.step = step


def check_loss(name: str, value: float | None, step: int) -> None:
    if value is not None and not math.isfinite(value):
        raise TrainingDiverged(f"{name} became {value}", step)


def check_weights(parameters: Iterable[torch.Tensor], step: int) -> None:
    """Every trainable tensor finite (the last update can break the weights after the last
    finite loss was logged). A sharded (FSDP) tensor is checked shard by shard, and the ranks
    agree, so all of them fail together rather than some waiting in the next collective."""
    broken = False
    with torch.no_grad():
        for p in parameters:
            local = p.to_local() if hasattr(p, "to_local") else p
            if p.requires_grad and local.numel() and not bool(torch.isfinite(local).all()):
                broken = True
                break
    if distributed.any_rank(broken):
        raise TrainingDiverged("model's weights became non-finite", step)
