"""The sequences one model is decoding together, and their shared KV cache.

Continuous batching on one KV cache (kv_cache.GrowingCache: a transformers DynamicCache that
grows in place instead of concatenating every step): every row is left-padded to the batch's
cache length and masked, so sequences of any length decode in one forward pass.
Newcomers are prefilled on their own and then joined in (the shorter side padded on the
left); finished rows are dropped, and cache columns no remaining row needs are trimmed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from polytune.inference.kv_cache import GrowingCache

# (input_ids, attention_mask or None where no row is padded, position_ids, cache, adapter name of
# each row[, every=True]) -> the last-position logits (every: at every position); LoadedModel.forward
Forward = Callable[..., torch.Tensor]


def _layers(cache: GrowingCache) -> list:
    return [layer for layer in cache.layers if getattr(layer, "keys", None) is not None and layer.keys.numel() > 0]


def _pad_left(t: torch.Tensor, n: int) -> torch.Tensor:
    """Pad dim -2 (cache) or -1 (mask) of `t` with n zeros on the left."""
    if n == 0:
        return t
    if t.dim() == 2:  # attention mask (batch, length)
        return torch.cat([t.new_zeros(t.shape[0], n), t], dim=1)
    shape = list(t.shape)
    shape[-2] = n
    return torch.cat([t.new_zeros(shape), t], dim=-2)


class RunningBatch:
    """Rows (any objects) with their cache and mask; row i of the cache belongs to rows[i]."""

    def __init__(self) -> None:
        self.rows: list = []
        self.cache: GrowingCache | None = None
        self.mask: torch.Tensor | None = None  # (rows, cache length), 0 where padded
        # Whether any row has padding. Without it the forward gets no mask at all: transformers
        # then skips building and checking one every step (one stream is never padded).
        self.padded = False

    def __len__(self) -> int:
        return len(self.rows)

    @staticmethod
    def prefill(
        forward: Forward, prompts: list[list[int]], adapters: list, device: torch.device, every: bool = False
    ) -> tuple[torch.Tensor, GrowingCache, torch.Tensor]:
        """Run the prompts (left-padded together); their last logits (every: the logits at
        every position, [rows, positions, vocab]), cache and mask."""
        length = max(len(p) for p in prompts)
        ids = torch.zeros(len(prompts), length, dtype=torch.long, device=device)
        mask = torch.zeros(len(prompts), length, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, length - len(p) :] = torch.tensor(p, dtype=torch.long, device=device)
            mask[i, length - len(p) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        cache = GrowingCache()
        given = mask if any(len(p) != length for p in prompts) else None
        logits = (
            forward(ids, given, positions, cache, adapters, every=True)
            if every
            else forward(ids, given, positions, cache, adapters)
        )
        return logits, cache, mask

    def join(self, rows: list, cache: GrowingCache, mask: torch.Tensor) -> None:
        """Add prefilled rows (their cache and mask) to the batch."""
        if self.cache is None or not self.rows:
            self.rows, self.cache, self.mask = list(rows), cache, mask
            self.padded = not bool(mask.all())
            return
        mine, theirs = self.mask.shape[1], mask.shape[1]
        length = max(mine, theirs)
        for a, b in zip(_layers(self.cache), _layers(cache), strict=True):
            a.keys = torch.cat([_pad_left(a.keys, length - mine), _pad_left(b.keys, length - theirs)])
            a.values = torch.cat([_pad_left(a.values, length - mine), _pad_left(b.values, length - theirs)])
        self.mask = torch.cat([_pad_left(self.mask, length - mine), _pad_left(mask, length - theirs)])
        self.padded = not bool(self.mask.all())
        self.rows.extend(rows)

    def step(self, forward: Forward, tokens: list[int], positions: list[int], adapters: list) -> torch.Tensor:
        """Feed one token per row; the logits for the next one."""
        device = self.mask.device
        ids = torch.tensor(tokens, dtype=torch.long, device=device).unsqueeze(1)
        pos = torch.tensor(positions, dtype=torch.long, device=device).unsqueeze(1)
        mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=1)
        logits = forward(ids, mask if self.padded else None, pos, self.cache, adapters)
        self.mask = mask
        return logits

    def keep(self, keep: list[int]) -> None:
        """Keep only the rows at these indices (in this order)."""
        if len(keep) == len(self.rows):
            return
        if not keep:
            self.rows, self.cache, self.mask, self.padded = [], None, None, False
            return
        index = torch.tensor(keep, dtype=torch.long, device=self.mask.device)
        self.rows = [self.rows[i] for i in keep]
        self.mask = self.mask.index_select(0, index)
        # Columns that are padding in every remaining row are dead weight: drop them.
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0]) if used.numel() else self.mask.shape[1]
        self.mask = self.mask[:, start:]
        self.padded = not bool(self.mask.all())
        for layer in _layers(self.cache):
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
