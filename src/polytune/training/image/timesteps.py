"""How training picks the noise level of each example: Oxen's `timestep_type`.

Flow matching mixes an image latent x0 and noise as x_t = (1 - σ)·x0 + σ·noise, σ in (0, 1);
σ near 1 is almost pure noise (where composition and colour are decided), near 0 almost the
image (fine detail). The three names mean what the widely used trainers behind them mean:

- `linear`:   σ uniform on (0, 1); every noise level equally often, loss unweighted.
- `sigmoid`:  σ = sigmoid(n), n ~ N(0, 1) (diffusers' `logit_normal`, SD3's default): most
  samples near σ = 0.5, few at the ends. Oxen's default.
- `weighted`: σ uniform, each example's loss weighted by a smooth bell over σ that peaks at
  σ = 0.85 and averages 1 over (0, 1): every level is seen, the high-noise ones count most.

UNet models train at discrete timesteps: the same draw u in (0, 1) becomes t = ⌊u·T⌋
(training/image/unet.py), with the same weights over u.

diffusers' `compute_density_for_timestep_sampling` draws σ ("none" = uniform, "logit_normal");
the bell is polytune's own curve (see `bell_weight`).
"""

from __future__ import annotations

import math

import torch

TIMESTEP_TYPES = ("linear", "sigmoid", "weighted")
BELL_PEAK = 0.85
BELL_WIDTH = 0.3  # the Gaussian's standard deviation, in σ units
_SCHEME = {"linear": "none", "sigmoid": "logit_normal", "weighted": "none"}


def _bell_mass() -> float:
    """∫₀¹ exp(-(σ-peak)²/2w²) dσ, so the weights average exactly 1 under uniform σ."""
    scale = BELL_WIDTH * math.sqrt(2)
    return BELL_WIDTH * math.sqrt(math.pi / 2) * (math.erf((1 - BELL_PEAK) / scale) + math.erf(BELL_PEAK / scale))


_BELL_MASS = _bell_mass()


def bell_weight(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.exp(-((sigmas - BELL_PEAK) ** 2) / (2 * BELL_WIDTH**2)) / _BELL_MASS


def sample_sigmas(timestep_type: str, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """One σ per example, in (0, 1)."""
    from diffusers.training_utils import compute_density_for_timestep_sampling

    if timestep_type not in _SCHEME:
        raise ValueError(f"unknown timestep_type {timestep_type!r}; expected one of {TIMESTEP_TYPES}")
    u = compute_density_for_timestep_sampling(
        _SCHEME[timestep_type], batch_size, logit_mean=0.0, logit_std=1.0, generator=generator
    )
    # Keep away from exactly 0 (nothing to learn) and 1 (no image left), as the scheduler does.
    return u.clamp(1e-3, 1.0 - 1e-3)


def loss_weights(timestep_type: str, sigmas: torch.Tensor) -> torch.Tensor:
    """Per-example loss weights for the σ drawn."""
    from diffusers.training_utils import compute_loss_weighting_for_sd3

    if timestep_type == "weighted":
        return bell_weight(sigmas)
    return compute_loss_weighting_for_sd3("none", sigmas)
