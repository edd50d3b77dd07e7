"""Training primitives (the Tinker API): the calls a researcher's own loop makes, in polytune's
words. The dialect decodes the wire into these; services and the worker act on them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from polytune.domain.errors import InvalidRequest

# The built-in losses the worker computes (training/primitives/losses.py gives each formula).
LOSSES: tuple[str, ...] = ("cross_entropy", "importance_sampling", "ppo", "cispo", "dro", "gspo")
# What each loss reads from a datum's loss_fn_inputs, besides target_tokens.
LOSS_INPUTS: dict[str, tuple[str, ...]] = {
    "cross_entropy": (),
    "importance_sampling": ("logprobs", "advantages"),
    "ppo": ("logprobs", "advantages"),
    "cispo": ("logprobs", "advantages"),
    "dro": ("logprobs", "advantages"),
    "gspo": ("logprobs", "advantages"),
}
# Read when given, and then of the datum's length (weights: any loss; the mask: gspo's).
OPTIONAL_INPUTS: tuple[str, ...] = ("weights", "sequence_ratio_mask")
# Losses the SDK names that this server refuses, and why. stable_reinforce's public page says what
# the client does (sample with record_stability_info, name the sequences in provenance spans, pass
# kl_coeff) but not what is recorded, the objective, or kl_coeff's default: computing a loss of our
# own under its name would train something other than what the user asked for.
UNDEFINED_LOSSES: dict[str, str] = {
    "stable_reinforce": (
        "stable_reinforce is not implemented on this server: Tinker's public documentation does not "
        "define its objective (what record_stability_info records, the formula, kl_coeff's default) "
        "exactly enough to compute the same loss"
    )
}


# The file in a saved state's folder that says what it was trained from (base model, LoRA settings).
STATE_META = "primitives.json"
# Tinker fixes alpha and lets the caller choose the rank; the adapter's scale is alpha / rank.
LORA_ALPHA = 32


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 32
    seed: int | None = None
    train_mlp: bool = True
    train_attn: bool = True
    train_unembed: bool = True


@dataclass(frozen=True)
class Datum:
    tokens: list[int]
    # loss_fn_inputs, dense, one row per token (target_tokens, weights, logprobs, advantages, ...)
    inputs: dict[str, np.ndarray]


@dataclass(frozen=True)
class AdamSettings:
    learning_rate: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-12
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0


@dataclass
class ForwardBackwardResult:
    outputs: list[dict[str, np.ndarray]]  # per datum: logprobs, elementwise_loss
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleSettings:
    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    # None: the tokenizer's end-of-sequence tokens; [] and no strings: none (runs to max_tokens).
    stop_tokens: tuple[int, ...] | None = None
    stop_strings: tuple[str, ...] = ()
    prompt_logprobs: bool = False


@dataclass(frozen=True)
class SampledSequence:
    tokens: list[int]
    logprobs: list[float]
    stop_reason: str  # "stop" or "length"
    # Each prompt token's logprob given the ones before it (NaN for the first); the first sample's only.
    prompt_logprobs: tuple[float, ...] | None = None


def check_loss_fn(loss_fn: str) -> None:
    """A 400 naming loss_fn unless it is a built-in loss or "custom" (an uploaded loss)."""
    if loss_fn in LOSSES or loss_fn == "custom":
        return
    why = UNDEFINED_LOSSES.get(loss_fn, f"Unsupported loss_fn '{loss_fn}'")
    raise InvalidRequest(
        f"{why}; this server has {', '.join(LOSSES)} and custom (a loss made with create_custom_loss, "
        "or forward_backward_custom).",
        param="loss_fn",
    )


def check_datum(i: int, d: Datum, loss_fn: str) -> None:
    """A 400 naming the field when a datum lacks what `loss_fn` reads or has the wrong length."""
    n = len(d.tokens)
    if n == 0:
        raise InvalidRequest(f"data[{i}].model_input is empty.", param=f"data[{i}].model_input")
    if "target_tokens" not in d.inputs:
        raise InvalidRequest(f"data[{i}].loss_fn_inputs needs target_tokens.", param=f"data[{i}].loss_fn_inputs")
    for key in ("target_tokens", *OPTIONAL_INPUTS, *LOSS_INPUTS[loss_fn]):
        if key not in d.inputs:
            if key in OPTIONAL_INPUTS:
                continue
            raise InvalidRequest(
                f"The {loss_fn} loss needs data[{i}].loss_fn_inputs['{key}'].", param=f"data[{i}].loss_fn_inputs.{key}"
            )
        if d.inputs[key].shape != (n,):
            raise InvalidRequest(
                f"data[{i}].loss_fn_inputs['{key}'] has shape {list(d.inputs[key].shape)}; the "
                f"model_input has {n} tokens.",
                param=f"data[{i}].loss_fn_inputs.{key}",
            )
