"""Streamed text paced by `stream_interval_ms`: the first token goes out at once, a fast model's
tokens go a few per delta, nothing is held past the interval, and the text is the same.

The backend here plays back tokens on a clock the test sets (the real backend's speed is the
machine's); the engine, the tokenizer and the detokenizing are the real ones. The real backend
on polytune-tiny checks that paced and unpaced runs give the same text and logprobs."""

from __future__ import annotations

import asyncio
import time

import pytest

from polytune.domain.inference import ChoiceDelta, GenerationParams, ServedModel, Usage
from polytune.inference import engine
from polytune.inference.backend import ModelTarget, TokenEvent
from polytune.inference.model_text import load_model_text

WORDS = " the river runs north past the old stone bridge and on to the quiet harbour town"


class PlayedBackend:
    """Yields the given tokens, each after its delay; the last one finishes with "length"."""

    def __init__(self, tokens: list[int], delays: list[float]):
        self.tokens, self.delays = tokens, delays
        self.closed = False

    async def generate(self, request_id, target, prompt_ids, params):
        try:
            for i, (token, delay) in enumerate(zip(self.tokens, self.delays, strict=True)):
                await asyncio.sleep(delay)
                last = i == len(self.tokens) - 1
                yield TokenEvent(token, logprob=-1.0, finish_reason="length" if last else None)
        finally:
            self.closed = True


@pytest.fixture(scope="module")
def text(tiny):
    _, base_dir = tiny
    return load_model_text(base_dir, base_dir)


def prepared(text, base_dir=".", *, stop=None, logprobs=None, n_tokens=64) -> engine.PreparedRequest:
    return engine.PreparedRequest(
        model=ServedModel(id="polytune-tiny", kind="base", base_model="polytune-tiny"),
        target=ModelTarget("polytune-tiny", base_dir),
        text=text,
        prompts=[text.tokenizer.encode("Hello")],
        max_tokens=[n_tokens],
        params=GenerationParams(temperature=0.0, stop=tuple(stop or ()), logprobs=logprobs),
        echo_texts=[""],
    )


async def timed(backend, request, interval) -> list[tuple[float, ChoiceDelta | Usage]]:
    start = time.monotonic()
    return [(time.monotonic() - start, d) async for d in engine.run(backend, request, interval)]


def texts(deltas) -> list[str]:
    return [d.text for _, d in deltas if isinstance(d, ChoiceDelta)]


def tokens_of(text) -> list[int]:
    ids = text.tokenizer.encode(WORDS, add_special_tokens=False)
    assert len(ids) >= 12 and all(text.token_text(i) for i in ids)  # each token is text of its own
    return ids


def test_without_an_interval_every_token_is_a_delta(text):
    ids = tokens_of(text)
    deltas = asyncio.run(timed(PlayedBackend(ids, [0.0] * len(ids)), prepared(text), 0.0))
    assert texts(deltas)[:-1] == [text.token_text(i) for i in ids[:-1]]
    assert "".join(texts(deltas)) == text.tokenizer.decode(ids)


def test_a_fast_model_sends_a_few_tokens_a_delta_the_first_at_once(text):
    ids = tokens_of(text)
    # Tokens every 5 ms against a 40 ms interval: ~8 a delta after the first.
    deltas = asyncio.run(timed(PlayedBackend(ids, [0.005] * len(ids)), prepared(text), 0.04))
    sent = texts(deltas)
    assert sent[0] == text.token_text(ids[0])  # the first token alone, not held
    assert len(sent) < len(ids) / 2
    assert "".join(sent) == text.tokenizer.decode(ids)
    assert deltas[-1][1] == Usage(prompt_tokens=len(text.tokenizer.encode("Hello")), completion_tokens=len(ids))


def test_a_slow_model_sends_every_token_alone(text):
    ids = tokens_of(text)[:6]
    deltas = asyncio.run(timed(PlayedBackend(ids, [0.03] * len(ids)), prepared(text), 0.01))
    assert texts(deltas)[:-1] == [text.token_text(i) for i in ids[:-1]]


def test_held_text_is_not_kept_past_the_interval_when_the_engine_stalls(text):
    ids = tokens_of(text)
    # Three tokens at once, then the engine stalls (another request's prefill, a model load)
    # for 1.5 s before the next: what was held goes out after the interval, not after the stall.
    delays = [0.0, 0.0, 0.0, 1.5] + [0.0] * (len(ids) - 4)
    backend = PlayedBackend(ids, delays)
    deltas = asyncio.run(timed(backend, prepared(text), 0.05))
    held = [(at, d.text) for at, d in deltas if isinstance(d, ChoiceDelta) and d.text]
    assert held[0][1] == text.token_text(ids[0])
    assert held[1] == (pytest.approx(0.05, abs=0.6), text.token_text(ids[1]) + text.token_text(ids[2]))
    assert held[1][0] < 1.0 and held[2][0] >= 1.5
    assert "".join(texts(deltas)) == text.tokenizer.decode(ids)


@pytest.mark.parametrize("kwargs", [{"stop": ["bridge"]}, {"logprobs": 0}], ids=["stop", "logprobs"])
def test_stop_strings_and_logprobs_come_out_the_same_paced(text, kwargs):
    ids = tokens_of(text)
    unpaced = asyncio.run(timed(PlayedBackend(ids, [0.0] * len(ids)), prepared(text, **kwargs), 0.0))
    paced = asyncio.run(timed(PlayedBackend(ids, [0.002] * len(ids)), prepared(text, **kwargs), 0.02))
    assert "".join(texts(paced)) == "".join(texts(unpaced))
    if "stop" in kwargs:
        assert "".join(texts(paced)) == text.tokenizer.decode(ids).split("bridge")[0]
        assert paced[-2][1].finish_reason == "stop"
    else:  # one logprob per token, however the tokens were grouped
        assert [lp.token for _, d in paced[:-1] for lp in d.logprobs] == [text.token_text(i) for i in ids]
        assert paced[-2][1].finish_reason == "length"


def test_a_client_gone_while_text_is_held_ends_the_backend_request(text):
    ids = tokens_of(text)
    backend = PlayedBackend(ids, [0.0, 0.0, 5.0] + [0.0] * (len(ids) - 3))

    async def first_two_then_leave() -> list[str]:
        seen = []
        deltas = engine.run(backend, prepared(text), 10.0)  # holds everything after the first
        async for d in deltas:
            seen.append(d.text)
            if len(seen) == 1:
                break
        await deltas.aclose()
        return seen

    start = time.monotonic()
    assert asyncio.run(first_two_then_leave()) == [text.token_text(ids[0])]
    assert backend.closed and time.monotonic() - start < 4  # not left waiting for the stalled token


def test_the_real_backend_gives_the_same_text_paced_or_not(text, tiny):
    from polytune.inference.hf_backend import TransformersBackend

    _, base_dir = tiny
    backend = TransformersBackend(memory_budget_bytes=2**30, threads=1)
    request = prepared(text, base_dir, logprobs=1, n_tokens=40)
    try:
        every = asyncio.run(timed(backend, request, 0.0))
        paced = asyncio.run(timed(backend, request, 0.5))
    finally:
        backend.close()
    assert "".join(texts(paced)) == "".join(texts(every))
    assert [lp for _, d in paced if isinstance(d, ChoiceDelta) for lp in d.logprobs] == [
        lp for _, d in every if isinstance(d, ChoiceDelta) for lp in d.logprobs
    ]
    assert len(texts(paced)) < len(texts(every))
    assert every[-1][1] == paced[-1][1]  # the same usage
