"""The range of every number a JobSpec holds, checked at creation whatever dialect it came
through. A value outside it is a 400 naming the field, before any data is read or any step is
trained: `n_checkpoints: 1000000000` would write a checkpoint per step, and a
`learning_rate_multiplier` of 1e300 trains nothing but NaN.

The bounds are wide: each lets through anything a real job would ask for, and stops the values
that would exhaust the machine or make training meaningless.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest
from .spec import JobSpec


@dataclass(frozen=True)
class Bound:
    field: str  # dotted path into the JobSpec (a method's options: only where the job has that method)
    param: str  # the canonical param name an error reports (dialects map it to theirs)
    low: float
    high: float
    integer: bool
    low_open: bool = False  # low itself not allowed (a rate or a ratio must be > 0)
    high_open: bool = False


def _int(field: str, param: str, low: int, high: int) -> Bound:
    return Bound(field, param, low, high, integer=True)


def _float(
    field: str, param: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Bound:
    return Bound(field, param, low, high, integer=False, low_open=low_open, high_open=high_open)


_HP = "hyperparameters"
BOUNDS: tuple[Bound, ...] = (
    _int(f"{_HP}.n_epochs", f"{_HP}.n_epochs", 1, 100),
    _int(f"{_HP}.max_steps", f"{_HP}.max_steps", 1, 1_000_000),
    _int(f"{_HP}.batch_size", f"{_HP}.batch_size", 1, 1024),
    _float(f"{_HP}.learning_rate_multiplier", f"{_HP}.learning_rate_multiplier", 0, 100, low_open=True),
    _float(f"{_HP}.learning_rate", f"{_HP}.learning_rate", 0, 1, low_open=True),
    _float(f"{_HP}.warmup_ratio", f"{_HP}.warmup_ratio", 0, 1, high_open=True),
    _float(f"{_HP}.weight_decay", f"{_HP}.weight_decay", 0, 10),
    _float(f"{_HP}.max_grad_norm", f"{_HP}.max_grad_norm", 0, 1e6, low_open=True),
    _int(f"{_HP}.gradient_accumulation_steps", f"{_HP}.gradient_accumulation_steps", 1, 1024),
    _int(f"{_HP}.context_length", f"{_HP}.context_length", 1, 1_048_576),
    _int(f"{_HP}.n_checkpoints", f"{_HP}.n_checkpoints", 0, 1000),
    _int(f"{_HP}.eval_interval", f"{_HP}.eval_interval", 1, 1_000_000),
    _int("adapter.lora.r", f"{_HP}.lora_r", 1, 1024),
    _int("adapter.lora.alpha", f"{_HP}.lora_alpha", 1, 65_536),
    # 1 included: SeekrFlow's document bounds dropout to [0, 1]; it trains (nothing reaches the adapter).
    _float("adapter.lora.dropout", f"{_HP}.lora_dropout", 0, 1),
    _float("method.preference.beta", f"{_HP}.beta", 0, 100, low_open=True),
    _float("method.reward.format_reward_weight", "reward.format_reward_weight", 0, 100),
    _float("method.reward.compute_multiplier", f"{_HP}.compute_multiplier", 0, 10, low_open=True),
    _int("method.reward.eval_samples", f"{_HP}.eval_samples", 1, 1000),
    _int("method.reward.max_completion_tokens", f"{_HP}.max_completion_tokens", 1, 131_072),
    _int("method.image.sample_every", "image.sample_every", 1, 1_000_000),
    _int("method.image.samples", "image.samples", 0, 64),
    _int("method.image.sample_steps", "image.sample_steps", 1, 1000),
    _int("method.image.resolution", "image.resolution", 8, 4096),
    _int("resources.n_accel", "resources.n_accel", 1, 1024),
    _int("resources.n_node", "resources.n_node", 1, 1024),
    _int("seed", "seed", 0, 2**31 - 1),
)


def _get(spec: JobSpec, field: str) -> Any:
    value: Any = spec
    for part in field.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _describe(b: Bound) -> str:
    left = "(" if b.low_open else "["
    right = ")" if b.high_open else "]"
    fmt = (lambda x: f"{int(x)}") if b.integer else (lambda x: f"{x:g}")
    return f"{left}{fmt(b.low)}, {fmt(b.high)}{right}"


def check_bound(b: Bound, value: Any) -> None:
    if value is None or value == "auto":
        return
    kind = "an integer" if b.integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (b.integer and not isinstance(value, int)):
        raise InvalidRequest(f"{b.param} must be {kind} or 'auto', got {value!r}.", param=b.param)
    too_low = value <= b.low if b.low_open else value < b.low
    too_high = value >= b.high if b.high_open else value > b.high
    if not math.isfinite(value) or too_low or too_high:
        raise InvalidRequest(
            f"{b.param} must be {kind} in {_describe(b)}, got {value!r}.", param=b.param, code="invalid_value"
        )


def check_bounds(spec: JobSpec) -> None:
    """Every bounded field of `spec` within its range (the first that is not raises)."""
    for b in BOUNDS:
        check_bound(b, _get(spec, b.field))
