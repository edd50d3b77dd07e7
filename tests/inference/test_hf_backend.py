"""The transformers backend on the real tiny model: continuous batching across adapters gives
the tokens plain `generate` gives, seeds are per request, and adapters are evicted LRU."""

from __future__ import annotations

import asyncio

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from polytune.inference.backend import ModelTarget, SamplingParams
from polytune.inference.hf_backend import TransformersBackend

QUESTIONS = [
    "Hi",
    "What is the capital of Zorbia?",
    "Tell me a long story about a river and a king",
    "Why?",
    "Name three colors please",
    "Who founded the city of Ostrava Nine?",
]


@pytest.fixture(scope="module")
def tokenizer(tiny):
    return AutoTokenizer.from_pretrained(tiny[1])


def _prompt(tokenizer, text: str) -> list[int]:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]


def _reference(base_dir, adapter_dir, prompt: list[int], max_new: int, stop: int) -> list[int]:
    """Plain greedy `generate` on a fresh copy of the model (and the adapter alone)."""
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    if adapter_dir is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what the backend uses on 2 cores; more is far slower on a busy machine
    try:
        with torch.inference_mode():
            out = model.eval().generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                do_sample=False,
                max_new_tokens=max_new,
                eos_token_id=stop,
                pad_token_id=stop,
            )
    finally:
        torch.set_num_threads(threads)
    return out[0, len(prompt) :].tolist()


async def _collect(backend, request_id, target, prompt, params, delay: float = 0.0):
    await asyncio.sleep(delay)
    return [ev async for evs in backend.generate(request_id, target, prompt, params) for ev in evs]


def _process_backend(**settings):
    from polytune.inference.process_backend import ProcessBackend

    return ProcessBackend(**settings)


# The same engine in the API server's thread and in a process of its own (the default backend).
BACKENDS = [
    pytest.param(TransformersBackend, id="thread"),
    pytest.param(_process_backend, id="process", marks=pytest.mark.live),
]


@pytest.mark.parametrize("make_backend", BACKENDS)
def test_batched_requests_across_adapters_match_plain_generate(make_backend, tiny, adapters, tokenizer):
    base_dir = tiny[1]
    stop = tokenizer.eos_token_id
    targets = [ModelTarget("polytune-tiny", base_dir)] + [
        ModelTarget("polytune-tiny", base_dir, f"adapter-{i}", adapters[i]) for i in range(2)
    ]
    jobs = [(targets[i % 3], _prompt(tokenizer, q), 12 + 3 * i) for i, q in enumerate(QUESTIONS)]
    backend = make_backend(memory_budget_bytes=1 << 30, max_batch=4)

    async def main():
        # Staggered starts: later requests join a batch that is already decoding, and with
        # max_batch=4 the last ones wait for a row to free up.
        return await asyncio.gather(
            *[
                _collect(
                    backend,
                    f"r{i}",
                    target,
                    prompt,
                    SamplingParams(max_tokens=n, temperature=0, stop_token_ids=frozenset({stop})),
                    delay=0.02 * i,
                )
                for i, (target, prompt, n) in enumerate(jobs)
            ]
        )

    try:
        results = asyncio.run(main())
        stats = backend.stats()
    finally:
        backend.close()
    for (target, prompt, n), events in zip(jobs, results):
        tokens = [ev.token_id for ev in events]
        assert tokens == _reference(base_dir, target.adapter_dir, prompt, n, stop), target.adapter_key
        assert events[-1].finish_reason == ("stop" if tokens[-1] == stop else "length")
        assert all(ev.finish_reason is None for ev in events[:-1])
    # The adapters really answer differently from the base and from each other.
    assert len({tuple(ev.token_id for ev in r) for r in results[:3]}) == 3
    # What the engine loaded is what the server reports, as soon as the requests are answered.
    assert sorted(stats["models"]["polytune-tiny"]["adapters"]) == ["adapter-0", "adapter-1"]
    assert stats["loads"] == 3 and stats["used_bytes"] > 0


def test_seeded_sampling_depends_on_the_seed_only(tiny, tokenizer):
    base_dir = tiny[1]
    target = ModelTarget("polytune-tiny", base_dir)
    prompt = _prompt(tokenizer, QUESTIONS[1])
    backend = TransformersBackend(memory_budget_bytes=1 << 30)

    def params(seed):
        return SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, seed=seed, logprobs=2)

    async def main():
        alone = await _collect(backend, "a", target, prompt, params(7))
        crowd = await asyncio.gather(*[_collect(backend, f"c{s}", target, prompt, params(s)) for s in (7, 8, 9)])
        return alone, crowd

    try:
        alone, (same, other, third) = asyncio.run(main())
    finally:
        backend.close()
    tokens = lambda events: [ev.token_id for ev in events]  # noqa: E731
    assert tokens(alone) == tokens(same)
    assert tokens(other) != tokens(same) or tokens(third) != tokens(same)
    for ev in alone:
        assert ev.logprob is not None and ev.logprob <= 0 and len(ev.top_logprobs) == 2


def test_adapters_are_evicted_least_recently_used(tiny, adapters, tokenizer):
    base_dir = tiny[1]
    prompt = _prompt(tokenizer, "Hi")
    greedy = SamplingParams(max_tokens=4, temperature=0)
    target = ModelTarget("polytune-tiny", base_dir, "adapter-0", adapters[0])
    probe = TransformersBackend(memory_budget_bytes=1 << 30)
    try:
        asyncio.run(_collect(probe, "p", target, prompt, greedy))
        sizes = probe.stats()["models"]["polytune-tiny"]
    finally:
        probe.close()
    # Room for the base and two adapters, not three.
    budget = sizes["bytes"] + int(2.5 * sizes["adapters"]["adapter-0"])
    backend = TransformersBackend(memory_budget_bytes=budget)

    async def use(i):
        target = ModelTarget("polytune-tiny", base_dir, f"adapter-{i}", adapters[i])
        return [ev.token_id for ev in await _collect(backend, f"u{i}", target, prompt, greedy)]

    async def main():
        first = await use(0)
        await use(1)
        await use(2)  # adapter-0 is the least recently used: evicted
        loaded_after_2 = backend.stats()["models"]["polytune-tiny"]["adapters"]
        await use(1)
        again = await use(0)  # reloaded; adapter-2 goes now
        return first, again, loaded_after_2, backend.stats()

    try:
        first, again, loaded_after_2, stats = asyncio.run(main())
    finally:
        backend.close()
    assert sorted(loaded_after_2) == ["adapter-1", "adapter-2"]
    assert sorted(stats["models"]["polytune-tiny"]["adapters"]) == ["adapter-0", "adapter-1"]
    assert stats["evictions"] == 2 and stats["loads"] == 5
    assert stats["used_bytes"] <= budget
    assert again == first


def test_closing_the_stream_early_frees_the_row(tiny, tokenizer):
    target = ModelTarget("polytune-tiny", tiny[1])
    backend = TransformersBackend(memory_budget_bytes=1 << 30)

    async def main():
        stream = backend.generate("long", target, _prompt(tokenizer, "Hi"), SamplingParams(max_tokens=10_000))
        async for _ in stream:
            break
        await stream.aclose()
        # The engine drops the row at its next step; a new request still runs.
        short = await _collect(backend, "short", target, _prompt(tokenizer, "Why?"), SamplingParams(max_tokens=3))
        return short

    try:
        short = asyncio.run(main())
    finally:
        backend.close()
    assert len(short) == 3 and short[-1].finish_reason == "length"
    assert backend._sequences == {}


def test_the_cache_goes_under_the_name_the_model_takes(tiny, tokenizer):
    # transformers 5.25 renamed `past_key_values` to `cache` and warns, on every layer's call,
    # under the old name (which 5.40 removes); a remote-code model may know only the old one.
    import warnings

    target = ModelTarget("polytune-tiny", tiny[1])
    backend = TransformersBackend(memory_budget_bytes=1 << 30)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tokens = asyncio.run(
                _collect(backend, "r", target, _prompt(tokenizer, "Hi"), SamplingParams(max_tokens=4, temperature=0.0))
            )
    finally:
        backend.close()
    assert len(tokens) == 4
    assert not [w for w in caught if "past_key_values" in str(w.message)]
