"""The built-in losses of the Tinker API, per datum, over the logprobs of its target tokens.

Each returns the elementwise loss (one value per token); the datum's loss is its sum, and the
batch's loss the sum over datums (Tinker sums; a caller wanting a mean scales `weights` or
`advantages`). `ratio` is exp(logprobs - sampling logprobs), the importance weight of a token
sampled by an older policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from polytune.domain.errors import InvalidRequest

Inputs = Mapping[str, torch.Tensor]
Config = Mapping[str, float | str]


def cross_entropy(logprobs: torch.Tensor, inputs: Inputs, config: Config) -> torch.Tensor:
    weights = inputs.get("weights")
    return -logprobs * (weights if weights is not None else 1.0)


def importance_sampling(logprobs: torch.Tensor, inputs: Inputs, config: Config) -> torch.Tensor:
    ratio = torch.exp(logprobs - inputs["logprobs"])
    return -ratio * inputs["advantages"]


def _clip_bounds(config: Config) -> tuple[float, float]:
    return float(config.get("clip_low_threshold", 0.8)), float(config.get("clip_high_threshold", 1.2))


def ppo(logprobs: torch.Tensor, inputs: Inputs, config: Config) -> torch.Tensor:
    low, high = _clip_bounds(config)
    ratio = torch.exp(logprobs - inputs["logprobs"])
    advantages = inputs["advantages"]
    return -torch.minimum(ratio * advantages, ratio.clamp(low, high) * advantages)


def cispo(logprobs: torch.Tensor, inputs: Inputs, config: Config) -> torch.Tensor:
    low, high = _clip_bounds(config)
    ratio = torch.exp(logprobs - inputs["logprobs"])
    return -ratio.clamp(low, high).detach() * logprobs * inputs["advantages"]


def gspo(logprobs: torch.Tensor, inputs: Inputs, config: Config) -> torch.Tensor:
    """GSPO-token (Zheng et al. 2025, as Tinker defines it): every token's ratio takes the value
    of the sequence's ratio, the geometric mean of the token ratios over the tokens
    `sequence_ratio_mask` marks (all of them when it is left out), and the gradient of the
    token's own logprob; then PPO's clipped objective with the same thresholds."""
    low, high = _clip_bounds(config)
    mask = inputs.get("sequence_ratio_mask")
    in_ratio = mask != 0 if mask is not None else torch.ones_like(logprobs, dtype=torch.bool)
    token_log_ratio = (logprobs.detach() - inputs["logprobs"])[in_ratio]
    log_ratio = token_log_ratio.mean() if token_log_ratio.numel() else logprobs.new_zeros(())
    ratio = torch.exp(log_ratio + logprobs - logprobs.detach())
    advantages = inputs["advantages"]
    return -torch.minimum(ratio * advantages, ratio.clamp(low, high) * advantages)


def dro(logprobs: torch.Tensor, inputs: Inputs, config: Config) -> torch.Tensor:
    if "beta" not in config:
        raise InvalidRequest("The dro loss needs loss_fn_config['beta'].", param="loss_fn_config.beta")
    beta = float(config["beta"])
    return -(logprobs * inputs["advantages"] - 0.5 * beta * (logprobs - inputs["logprobs"]) ** 2)


LOSS_FUNCTIONS: dict[str, Callable[[torch.Tensor, Inputs, Config], torch.Tensor]] = {
    "cross_entropy": cross_entropy,
    "importance_sampling": importance_sampling,
    "ppo": ppo,
    "cispo": cispo,
    "dro": dro,
    "gspo": gspo,
}
