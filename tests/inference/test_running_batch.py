"""The running batch on the real tiny model: a row decodes the tokens plain `generate` gives
whether it runs alone (no attention mask is passed at all) or beside a longer, padded row
that later leaves (the mask comes back while there is padding, and goes once it is trimmed);
and the greedy shortcut in `choose` picks what the full path picks."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from polytune.inference.backend import SamplingParams
from polytune.inference.model_pool import LoadedModel
from polytune.inference.running_batch import RunningBatch
from polytune.inference.sampling import RowSampler, choose

STEPS = 24


def _prompt(tokenizer, text: str) -> list[int]:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]


def test_a_row_decodes_like_generate_alone_and_beside_a_padded_row(tiny):
    base_dir = tiny[1]
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    loaded = LoadedModel("polytune-tiny", model, torch.device("cpu"))
    short, long = _prompt(tokenizer, "Hi"), _prompt(tokenizer, "Tell me a long story about a river and a king")
    assert len(long) > len(short)
    masks: list[bool] = []  # per forward: was a mask passed

    def forward(ids, mask, positions, cache, adapters, every=False):
        masks.append(mask is not None)
        return loaded.forward(ids, mask, positions, cache, adapters, every)

    def decode(batch: RunningBatch, logits: torch.Tensor, steps: int, positions: list[int]):
        """`steps` greedy tokens per row, each fed back; the tokens, the next logits, positions."""
        out: list[list[int]] = [[] for _ in positions]
        for _ in range(steps):
            tokens = logits.argmax(dim=-1).tolist()
            for row, t in zip(out, tokens, strict=True):
                row.append(t)
            positions = [p + 1 for p in positions]
            logits = batch.step(forward, tokens, positions, [None] * len(tokens))
        return out, logits, positions

    with torch.inference_mode():
        reference = model.generate(
            torch.tensor([short]),
            attention_mask=torch.ones(1, len(short), dtype=torch.long),
            do_sample=False,
            max_new_tokens=STEPS,
            min_new_tokens=STEPS,
        )[0, len(short) :].tolist()

        # Alone: never padded, so no forward gets a mask.
        alone = RunningBatch()
        logits, cache, mask = RunningBatch.prefill(forward, [short], [None], torch.device("cpu"))
        alone.join(["short"], cache, mask)
        assert not alone.padded
        assert decode(alone, logits, STEPS, [len(short) - 1])[0][0] == reference
        assert not any(masks)

        # Beside the longer prompt: padded (masked) until the long row leaves, then trimmed.
        masks.clear()
        both = RunningBatch()
        logits, cache, mask = RunningBatch.prefill(forward, [short, long], [None, None], torch.device("cpu"))
        both.join(["short", "long"], cache, mask)
        assert both.padded and masks == [True]
        (first, _), logits, positions = decode(both, logits, 6, [len(short) - 1, len(long) - 1])
        assert all(masks)
        both.keep([0])
        assert not both.padded and both.mask.shape[1] == len(short) + 6  # the padding columns are gone
        masks.clear()
        (rest,), _, _ = decode(both, logits[:1], STEPS - 6, positions[:1])
        assert not any(masks)
    assert first + rest == reference


def test_the_greedy_shortcut_chooses_what_the_full_path_chooses():
    torch.manual_seed(0)
    logits = torch.randn(5, 300)
    logits[2, 17] = logits[2].max()  # a tie: both paths must take the same (first) index
    plain = [RowSampler(SamplingParams(max_tokens=4, temperature=0), 300, torch.device("cpu")) for _ in range(5)]
    assert all(r.plain_greedy for r in plain)
    # A row asking for logprobs takes every row through the full path.
    full = plain[:4] + [RowSampler(SamplingParams(max_tokens=4, temperature=0, logprobs=0), 300, torch.device("cpu"))]
    assert not full[-1].plain_greedy
    shortcut, general = choose(logits, plain), choose(logits, full)
    assert [c.token for c in shortcut] == [c.token for c in general] == logits.argmax(dim=-1).tolist()
    assert all(c.logprob is None and c.top == () for c in shortcut)
    assert general[-1].logprob is not None
