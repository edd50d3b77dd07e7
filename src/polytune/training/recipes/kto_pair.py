"""The `kto_pair` DPO loss, which SeekrFlow offers and trl no longer does (trl 1.x accepts the
name in DPOConfig and fails at the first step).

The loss is the paired form of KTO that trl's DPOTrainer carried until it moved KTO to a
trainer of its own: eqn (7) of the HALOs/KTO report (Ethayarajh et al., 2024,
arXiv:2402.01306) applied to a batch of preference pairs, each pair giving one desirable and
one undesirable example. With the log-ratios of the policy to the reference model

    c_i = log π(chosen_i | x_i) − log π_ref(chosen_i | x_i)
    r_i = log π(rejected_i | x_i) − log π_ref(rejected_i | x_i)

and the KL term of each half estimated from the other half of the batch, as the report
describes (the mean log-ratio, floored at 0),

    KL_c = max(0, mean_i c_i)        KL_r = max(0, mean_i r_i)

the loss over the 2·B examples of a batch of B pairs is

    L = mean( [1 − σ(β (c_i − KL_r))]_i  ++  [1 − σ(β (KL_c − r_i))]_i )

Everything else (tokenising, the reference model, the forward passes, the rewards/* metrics)
is trl's: the trainer below runs trl's own loss computation with the "sigmoid" loss, reads
the per-token log-probabilities of the two forward passes it makes, and returns this loss
instead of trl's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from trl import DPOTrainer

if TYPE_CHECKING:
    from torch import nn


def kto_pair_loss(chosen_logratios: torch.Tensor, rejected_logratios: torch.Tensor, beta: float) -> torch.Tensor:
    """The kto_pair loss of one batch (formula in the module docstring)."""
    chosen_kl = chosen_logratios.mean().clamp(min=0)
    rejected_kl = rejected_logratios.mean().clamp(min=0)
    losses = torch.cat(
        (
            1 - torch.sigmoid(beta * (chosen_logratios - rejected_kl)),
            1 - torch.sigmoid(beta * (chosen_kl - rejected_logratios)),
        )
    )
    return losses.mean()


class _LogProbsTap:
    """Records the `log_probs` output of every forward pass of the given modules, in order."""

    def __init__(self, *modules: nn.Module | None):
        self.modules = [m for m in modules if m is not None]
        self.seen: list[torch.Tensor] = []
        self._handles: list[Any] = []

    def _record(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        log_probs = getattr(output, "log_probs", None)
        if log_probs is not None:
            self.seen.append(log_probs)

    def __enter__(self) -> _LogProbsTap:
        self._handles = [m.register_forward_hook(self._record, with_kwargs=True) for m in self.modules]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self._handles:
            handle.remove()


class KtoPairDPOTrainer(DPOTrainer):
    """trl's DPOTrainer with the kto_pair loss (args.loss_type == ["kto_pair"])."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if list(self.args.loss_type) != ["kto_pair"]:
            raise ValueError(f"KtoPairDPOTrainer trains loss_type ['kto_pair'] only, got {self.args.loss_type}")
        # trl's loop knows no kto_pair: it computes "sigmoid" (and every metric) and the loss
        # returned is swapped in _compute_loss. args.loss_type still says kto_pair.
        self.loss_types, self.loss_weights = ["sigmoid"], [1.0]

    def _compute_loss(self, model, inputs, return_outputs):
        # trl runs the policy first, then the reference: the adapter-disabled policy itself
        # for LoRA, else self.ref_model (reference log-probs are never precomputed here).
        with _LogProbsTap(self.model, self.ref_model) as tap:
            result = super()._compute_loss(model, inputs, return_outputs)
        if len(tap.seen) != 2:
            raise RuntimeError(f"expected a policy and a reference forward pass, saw {len(tap.seen)}")
        seq_len = inputs["completion_mask"].size(1) - 1
        # Zero where the label is -100 (prompt and padding), so the sum is over the completion.
        policy, reference = (lp[:, -seq_len:].sum(dim=1) for lp in tap.seen)
        chosen, rejected = (policy - reference).chunk(2, dim=0)  # the batch is [chosen, rejected]
        loss = kto_pair_loss(chosen, rejected, self.beta)
        return (loss, result[1]) if return_outputs else loss
