"""Choosing the next token for each row of a batch, each row with its own sampling params.

Rows of one batch may ask for different temperatures, top_p, penalties and seeds, so the
work is split: logits adjustments row by row (only for rows that need them), then greedy rows
take the argmax together and sampled rows draw together. A seeded row draws from its own
torch.Generator, so its choices depend on its seed only, never on its batch-mates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from polytune.inference.backend import SamplingParams


class RowSampler:
    """Per-sequence sampling state: the params, a generator, and token counts for penalties."""

    def __init__(self, params: SamplingParams, vocab_size: int, device: torch.device):
        self.params = params
        seed = params.seed if params.seed is not None else random.getrandbits(63)
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.bias: torch.Tensor | None = None
        if params.logit_bias:
            self.bias = torch.zeros(vocab_size, device=device)
            for token, value in params.logit_bias.items():
                if 0 <= token < vocab_size:
                    self.bias[token] = value
        self.counts: torch.Tensor | None = None
        if params.presence_penalty or params.frequency_penalty:
            self.counts = torch.zeros(vocab_size, device=device)
        # Greedy with no logits adjustment and no logprobs: the argmax is all there is to do.
        self.plain_greedy = (
            params.temperature == 0 and self.bias is None and self.counts is None and params.logprobs is None
        )

    def record(self, token: int) -> None:
        if self.counts is not None and token < self.counts.shape[0]:
            self.counts[token] += 1

    def adjust(self, logits: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            logits = logits + self.bias[: logits.shape[-1]]
        if self.counts is not None:
            counts = self.counts[: logits.shape[-1]]
            logits = (
                logits - self.params.frequency_penalty * counts - self.params.presence_penalty * (counts > 0).float()
            )
        return logits


@dataclass(frozen=True)
class Choice:
    token: int
    logprob: float | None
    top: tuple[tuple[int, float], ...]


def choose(logits: torch.Tensor, rows: list[RowSampler]) -> list[Choice]:
    """The next token of each row; `logits` is (rows, vocab) for the last position."""
    if all(r.plain_greedy for r in rows):
        # The common case (greedy, nothing to adjust or report): one argmax, nothing else per
        # token (each tensor op here is a few microseconds, at one stream on every token).
        return [Choice(token, None, ()) for token in logits.argmax(dim=-1).tolist()]
    logits = logits.float()
    adjusted = [i for i, r in enumerate(rows) if r.bias is not None or r.counts is not None]
    if adjusted:
        logits = logits.clone()
        for i in adjusted:
            logits[i] = rows[i].adjust(logits[i])
    tokens = torch.empty(len(rows), dtype=torch.long, device=logits.device)

    greedy = [i for i, r in enumerate(rows) if r.params.temperature == 0]
    if greedy:
        tokens[greedy] = logits[greedy].argmax(dim=-1)
    sampled = [i for i, r in enumerate(rows) if r.params.temperature != 0]
    if sampled:
        tokens[sampled] = _sample(logits[sampled], [rows[i] for i in sampled])

    want = [i for i, r in enumerate(rows) if r.params.logprobs is not None]
    logprobs = torch.log_softmax(logits[want], dim=-1) if want else None
    token_list = tokens.tolist()
    out = []
    for i, r in enumerate(rows):
        r.record(token_list[i])
        if r.params.logprobs is None:
            out.append(Choice(token_list[i], None, ()))
            continue
        lp = logprobs[want.index(i)]
        top: tuple[tuple[int, float], ...] = ()
        if r.params.logprobs > 0:
            values, ids = lp.topk(min(r.params.logprobs, lp.shape[-1]))
            top = tuple(zip(ids.tolist(), values.tolist()))
        out.append(Choice(token_list[i], float(lp[token_list[i]]), top))
    return out


def _sample(logits: torch.Tensor, rows: list[RowSampler]) -> torch.Tensor:
    temps = torch.tensor([r.params.temperature for r in rows], device=logits.device).unsqueeze(1)
    probs = torch.softmax(logits / temps, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(dim=-1)
    top_p = torch.tensor([r.params.top_p for r in rows], device=logits.device).unsqueeze(1)
    # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    sorted_probs = sorted_probs.masked_fill(cumulative - sorted_probs >= top_p, 0.0)
    cumulative = sorted_probs.cumsum(dim=-1)
    # One uniform draw per row from the row's own generator, then inverse-CDF sampling.
    draws = torch.stack([torch.rand((), generator=r.generator, device=logits.device) for r in rows])
    picks = torch.searchsorted(cumulative, (draws * cumulative[:, -1]).unsqueeze(1)).clamp(max=cumulative.shape[-1] - 1)
    return order.gather(1, picks).squeeze(1)
