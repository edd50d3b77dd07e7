"""The in-place KV cache on the real tiny model: decoding through it gives exactly the logits
transformers' own DynamicCache gives (across reallocations and after the cache was edited from
outside, as RunningBatch does when rows join or leave), a decode step writes into the buffer it
already has instead of building a new cache, and transformers' own crop
(inherited, it slices `keys`) forgets the last positions."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from polytune.inference.kv_cache import GrowingCache, GrowingLayer

STEPS = 20


@pytest.fixture(scope="module")
def model_and_prompt(tiny):
    tokenizer = AutoTokenizer.from_pretrained(tiny[1])
    model = AutoModelForCausalLM.from_pretrained(tiny[1]).eval()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Tell me about the river and the king"}],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
    )["input_ids"]
    return model, prompt


def _decode(model, prompt: list[int], cache, steps: int = STEPS, between=None) -> list[torch.Tensor]:
    """Greedy decode from `prompt` into `cache`; the last-position logits of every forward.
    `between(cache)` runs after each step (to edit the cache from outside)."""
    out = model(input_ids=torch.tensor([prompt]), cache=cache, use_cache=True, logits_to_keep=1)
    logits = [out.logits[:, -1]]
    for i in range(steps):
        token = logits[-1].argmax(dim=-1, keepdim=True)
        position = torch.tensor([[len(prompt) + i]])
        out = model(input_ids=token, position_ids=position, cache=cache, use_cache=True, logits_to_keep=1)
        logits.append(out.logits[:, -1])
        if between is not None:
            between(cache)
    return logits


def test_decoding_through_it_gives_dynamic_caches_logits_exactly(model_and_prompt, monkeypatch):
    model, prompt = model_and_prompt
    # Room for 3 more positions at a time: the 20 steps reallocate the buffer several times.
    monkeypatch.setattr(GrowingLayer, "headroom", 3)
    with torch.inference_mode():
        reference = _decode(model, prompt, DynamicCache())
        grown = _decode(model, prompt, GrowingCache())
    assert len(grown) == len(reference) == STEPS + 1
    for step, (a, b) in enumerate(zip(grown, reference, strict=True)):
        assert torch.equal(a, b), f"logits differ at step {step}"


def test_a_step_writes_into_the_buffer_it_has(model_and_prompt):
    model, prompt = model_and_prompt
    buffers, lengths = [], []

    def note(cache) -> None:
        layer = cache.layers[0]
        buffers.append(layer._key_buffer.data_ptr())
        lengths.append(cache.get_seq_length())
        assert layer.keys.data_ptr() == layer._key_buffer.data_ptr()  # attention reads a view of it

    with torch.inference_mode():
        _decode(model, prompt, GrowingCache(), steps=10, between=note)
    assert lengths == list(range(len(prompt) + 1, len(prompt) + 11))
    assert len(set(buffers)) == 1, "a decode step within the buffer's room allocated a new one"


def test_tensors_assigned_from_outside_are_adopted(model_and_prompt):
    """RunningBatch assigns `keys`/`values` when rows join or leave; the layer must carry on
    from what was assigned, not from its old buffer."""
    model, prompt = model_and_prompt

    def double_the_row(cache) -> None:  # after the first step: the row twice, as a join would
        for layer in cache.layers:
            if layer.keys.shape[0] == 1:
                layer.keys = torch.cat([layer.keys, layer.keys])
                layer.values = torch.cat([layer.values, layer.values])

    def next_step(cache, logits: torch.Tensor) -> torch.Tensor:
        token = logits.argmax(dim=-1, keepdim=True)[:1].repeat(2, 1)
        position = torch.tensor([[len(prompt) + 1]] * 2)
        return model(input_ids=token, position_ids=position, cache=cache, use_cache=True, logits_to_keep=1).logits

    with torch.inference_mode():
        reference_cache, cache = DynamicCache(), GrowingCache()
        reference = next_step(reference_cache, _decode(model, prompt, reference_cache, 1, double_the_row)[-1])
        ours = next_step(cache, _decode(model, prompt, cache, 1, double_the_row)[-1])
    assert cache.get_seq_length() == len(prompt) + 2
    assert torch.equal(ours, reference)
    assert cache.layers[0].keys is cache.layers[0]._keys_view  # adopted into a buffer of its own


def test_crop_forgets_the_last_positions(model_and_prompt):
    model, prompt = model_and_prompt
    with torch.inference_mode():
        reference = _decode(model, prompt, DynamicCache(), steps=5)
        cache = GrowingCache()
        _decode(model, prompt, cache, steps=5)
        cache.crop(-3)  # transformers' convention: minus the positions to remove
        assert cache.get_seq_length() == len(prompt) + 2
        # Feeding the third token again continues from the cropped history: step 3's logits.
        token = reference[2].argmax(dim=-1, keepdim=True)
        out = model(
            input_ids=token,
            position_ids=torch.tensor([[len(prompt) + 2]]),
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
    assert torch.equal(out.logits[:, -1], reference[3])
