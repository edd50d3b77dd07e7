"""Tokens handed over at most every `stream_interval_ms`: the first at once, a fast model's a
few at a time, none held longer than the interval, and the same text either way.

The backend tests run the real backend on polytune-tiny; the engine tests give the real
engine, tokenizer and detokenizer hand-overs shaped by the test (a backend that plays them
back), since how a real model's tokens group depends on the machine's speed."""

from __future__ import annotations

import asyncio
import time

import pytest

from polytune.domain.inference import ChoiceDelta, GenerationParams, ServedModel, Usage
from polytune.inference import engine
from polytune.inference.backend import ModelTarget, SamplingParams, TokenEvent
from polytune.inference.hf_backend import TransformersBackend
from polytune.inference.model_text import load_model_text

WORDS = " the river runs north past the old stone bridge and on to the quiet harbour town"


@pytest.fixture(scope="module")
def text(tiny):
    _, base_dir = tiny
    return load_model_text(base_dir, base_dir)


def hand_overs(tiny, interval: float, max_tokens: int = 40) -> list[tuple[float, list[TokenEvent]]]:
    """The real backend's hand-overs of one greedy request, each with the time it came."""
    _, base_dir = tiny
    backend = TransformersBackend(memory_budget_bytes=2**30, threads=1, hand_over_interval=interval)

    async def main():
        out = []
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0, logprobs=1)
        async for events in backend.generate("r", ModelTarget("polytune-tiny", base_dir), [1, 2, 3], params):
            out.append((time.monotonic(), events))
        return out

    try:
        return asyncio.run(main())
    finally:
        backend.close()


def test_without_an_interval_a_keeping_up_loop_gets_tokens_one_by_one(tiny):
    got = hand_overs(tiny, 0.0)
    assert sum(len(events) for _, events in got) == 40
    # An idle event loop keeps up with a 1 M model's tokens: mostly one a hand-over (under load
    # a slow loop takes what arrived meanwhile together, so not all of them).
    assert len(got) > 10


def test_an_interval_groups_a_fast_models_tokens_and_holds_none_past_it(tiny):
    every = hand_overs(tiny, 0.0)
    paced = hand_overs(tiny, 0.05)
    assert [(e.token_id, e.logprob, e.top_logprobs) for _, events in paced for e in events] == [
        (e.token_id, e.logprob, e.top_logprobs) for _, events in every for e in events
    ]
    assert paced[-1][1][-1].finish_reason == "length"
    assert len(paced) < len(every)
    # Hand-overs come at least the interval apart (the first at once, and the one that ends
    # the request as soon as it ends), so the loop wakes once an interval; each takes everything
    # generated while it waited.
    gaps = [b - a for (a, _), (b, _) in zip(paced, paced[1:-1], strict=False)]
    assert all(gap >= 0.05 - 0.005 for gap in gaps), gaps


def test_a_client_gone_while_the_backend_waits_out_the_interval_aborts_the_request(tiny):
    _, base_dir = tiny
    backend = TransformersBackend(memory_budget_bytes=2**30, threads=1, hand_over_interval=30.0)

    async def main():
        params = SamplingParams(max_tokens=10_000, temperature=0.0)
        stream = backend.generate("long", ModelTarget("polytune-tiny", base_dir), [1, 2, 3], params)
        first = await anext(stream)
        waiting = asyncio.ensure_future(anext(stream))  # into its 30 s wait for the next hand-over
        await asyncio.sleep(0.2)
        started = time.monotonic()
        waiting.cancel()  # what a client's disconnect does to the request's task
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await stream.aclose()
        return first, time.monotonic() - started

    try:
        first, took = asyncio.run(main())
        assert len(first) >= 1 and took < 5
        deadline = time.monotonic() + 10  # the engine drops the row at its next step
        while backend._sequences and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not backend._sequences
    finally:
        backend.close()


class PlayedBackend:
    """Plays back the given hand-overs; the last token finishes with "length"."""

    def __init__(self, groups: list[list[int]]):
        self.groups = groups
        self.closed = False

    async def generate(self, request_id, target, prompt_ids, params):
        last = self.groups[-1][-1]
        try:
            for i, group in enumerate(self.groups):
                await asyncio.sleep(0)
                final = i == len(self.groups) - 1
                yield [
                    TokenEvent(t, logprob=-1.0, finish_reason="length" if final and t is last else None) for t in group
                ]
        finally:
            self.closed = True


def prepared(text, *, stop=(), logprobs=None) -> engine.PreparedRequest:
    return engine.PreparedRequest(
        model=ServedModel(id="polytune-tiny", kind="base", base_model="polytune-tiny"),
        target=ModelTarget("polytune-tiny", "."),
        text=text,
        prompts=[text.tokenizer.encode("Hello")],
        max_tokens=[64],
        params=GenerationParams(temperature=0.0, stop=tuple(stop), logprobs=logprobs),
        echo_texts=[""],
    )


def run(backend, request) -> list[ChoiceDelta | Usage]:
    async def main():
        return [d async for d in engine.run(backend, request)]

    return asyncio.run(main())


def words(text) -> list[int]:
    ids = text.tokenizer.encode(WORDS, add_special_tokens=False)
    assert len(ids) >= 12 and all(text.token_text(i) for i in ids)  # each token is text of its own
    return ids


def test_one_delta_a_hand_over_with_the_same_text(text):
    ids = words(text)
    groups = [ids[:1], ids[1:5], ids[5:6], ids[6:]]
    deltas = run(PlayedBackend(groups), prepared(text))
    assert [d.text for d in deltas[:-1]] == [text.tokenizer.decode(g) for g in groups]
    assert deltas[-2].finish_reason == "length"
    assert deltas[-1] == Usage(prompt_tokens=len(text.tokenizer.encode("Hello")), completion_tokens=len(ids))


@pytest.mark.parametrize("kwargs", [{"stop": ["bridge"]}, {"logprobs": 0}], ids=["stop", "logprobs"])
def test_stop_strings_and_logprobs_across_hand_overs(text, kwargs):
    ids = words(text)
    one_by_one = run(PlayedBackend([[i] for i in ids]), prepared(text, **kwargs))
    grouped = run(PlayedBackend([ids[:3], ids[3:9], ids[9:]]), prepared(text, **kwargs))
    joined = "".join(d.text for d in grouped[:-1])
    assert joined == "".join(d.text for d in one_by_one[:-1])
    if "stop" in kwargs:
        assert joined == text.tokenizer.decode(ids).split("bridge")[0]
        assert grouped[-2].finish_reason == "stop"
    else:  # one logprob per token, however the tokens were grouped
        assert [lp.token for d in grouped[:-1] for lp in d.logprobs] == [text.token_text(i) for i in ids]
        assert grouped[-2].finish_reason == "length"
