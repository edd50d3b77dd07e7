"""A KV cache that grows in place: each decode step writes its one new position into room kept
at the end, instead of transformers' DynamicCache concatenating the whole cache into a new
tensor every step (`torch.cat` per layer, per token).

The concatenation reads and writes every cached position of every layer for each new token,
and allocates a fresh tensor each time; at a long context that is a large part of a decode
step (docs/benchmarks.md: on the 29 M benchmark model at 1,500 cached positions, one stream
decodes ~17 % faster with this cache, with the same tokens). Here the keys and values live in
a buffer with spare positions; a step copies only its new positions and hands attention a view
of the filled part. When the buffer is full it is reallocated with an eighth more room (at
least `HEADROOM` positions), so a step copies the whole cache once every 64 or more tokens
instead of every token. The price is that spare room: up to max(64 positions, 1/8) more KV
memory than the filled part.

RunningBatch (running_batch.py) still edits the cache by assigning `layer.keys` / `layer.values`
when rows join or leave: a layer notices that its keys are no longer its own view and adopts
the assigned tensors into a new buffer at its next update. DynamicLayer's own `crop` and batch
selection assign `keys` the same way, so they need nothing here.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache, DynamicLayer

HEADROOM = 64  # spare positions at least, per (re)allocation


class GrowingLayer(DynamicLayer):
    """One layer's keys and values, [batch, heads, positions, head_dim], in a buffer with room
    for more positions. `keys` / `values` are views of the filled part (what transformers reads)."""

    headroom = HEADROOM

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._keys_view: torch.Tensor | None = None  # what `keys` is while no one else assigned it
        self._length = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if self._key_buffer is None or self.keys is not self._keys_view:
            self._adopt(key_states, value_states)
        end = self._length + key_states.shape[-2]
        if end > self._key_buffer.shape[-2]:
            self._reallocate(end)
        self._key_buffer[:, :, self._length : end] = key_states
        self._value_buffer[:, :, self._length : end] = value_states
        self._set_length(end)
        return self.keys, self.values

    def _adopt(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """Start a buffer from whatever `keys` / `values` hold now (nothing on the first update;
        tensors RunningBatch assigned after rows joined or left)."""
        old_keys = self.keys if self.keys is not None and self.keys.numel() else None
        old_values = self.values if old_keys is not None else None
        self.is_initialized, self.device = True, key_states.device
        length = 0 if old_keys is None else old_keys.shape[-2]
        shape = list(key_states.shape)
        shape[-2] = length + key_states.shape[-2] + self.headroom
        self._key_buffer = key_states.new_empty(shape)
        self._value_buffer = value_states.new_empty(shape)
        if old_keys is not None:
            self._key_buffer[:, :, :length] = old_keys
            self._value_buffer[:, :, :length] = old_values
        self._length = length

    def _reallocate(self, needed: int) -> None:
        shape = list(self._key_buffer.shape)
        shape[-2] = needed + max(self.headroom, needed // 8)
        keys, values = self._key_buffer.new_empty(shape), self._value_buffer.new_empty(shape)
        keys[:, :, : self._length] = self._key_buffer[:, :, : self._length]
        values[:, :, : self._length] = self._value_buffer[:, :, : self._length]
        self._key_buffer, self._value_buffer = keys, values

    def _set_length(self, length: int) -> None:
        self._length = length
        self.keys = self._keys_view = self._key_buffer[:, :, :length]
        self.values = self._value_buffer[:, :, :length]


class GrowingCache(DynamicCache):
    """A DynamicCache (so transformers treats it as one) whose layers are GrowingLayers, made
    lazily as the model's layers first write to it, as DynamicCache() does without a config."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)
