"""Serving on top of any backend: prompts and params in, choices' text deltas and usage out.

One backend request per choice (n choices per prompt); their deltas are interleaved as they
come. Here, not in the backend, live detokenizing, stop strings, echo and logprob rendering,
so every backend behaves the same to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from polytune.domain.ids import new_id
from polytune.domain.inference import ChoiceDelta, GenerationParams, ServedModel, TokenLogprob, Usage
from polytune.inference.backend import InferenceBackend, ModelTarget, SamplingParams
from polytune.inference.detokenize import IncrementalText
from polytune.inference.model_text import ModelText


@dataclass
class PreparedRequest:
    """A request checked and tokenized, ready to run (nothing can be wrong with it any more
    except what goes wrong while generating)."""

    model: ServedModel
    target: ModelTarget
    text: ModelText
    prompts: list[list[int]]
    max_tokens: list[int]  # per prompt
    params: GenerationParams
    echo_texts: list[str]  # per prompt: what echo prepends ("" without echo)


def sampling_params(prepared: PreparedRequest, prompt_index: int, choice: int) -> SamplingParams:
    p = prepared.params
    return SamplingParams(
        max_tokens=prepared.max_tokens[prompt_index],
        temperature=p.temperature,
        top_p=p.top_p,
        # n choices from one seed must differ from each other, yet all be reproducible.
        seed=None if p.seed is None else p.seed + choice,
        stop_token_ids=prepared.text.stop_token_ids,
        presence_penalty=p.presence_penalty,
        frequency_penalty=p.frequency_penalty,
        logit_bias=p.logit_bias,
        logprobs=p.logprobs,
    )


async def run(backend: InferenceBackend, prepared: PreparedRequest) -> AsyncIterator[ChoiceDelta | Usage]:
    """Deltas of all choices as they come (index = prompt index * n + choice), then the usage."""
    generated = [0]
    n = prepared.params.n
    if len(prepared.prompts) * n == 1:
        # One choice (most requests): its deltas straight through, without a task and a queue
        # hop per token (measured: the event loop's per-token work is what a single stream
        # pays on top of the model; docs/benchmarks.md).
        async with contextlib.aclosing(_choice(backend, prepared, 0, 0, generated)) as deltas:
            async for delta in deltas:
                yield delta
        yield Usage(prompt_tokens=len(prepared.prompts[0]), completion_tokens=generated[0])
        return
    out: asyncio.Queue = asyncio.Queue()

    async def one(prompt_index: int, choice: int) -> None:
        async with contextlib.aclosing(_choice(backend, prepared, prompt_index, choice, generated)) as deltas:
            async for delta in deltas:
                await out.put(delta)

    tasks = [asyncio.create_task(one(i, c)) for i in range(len(prepared.prompts)) for c in range(n)]
    waiter = asyncio.create_task(_wait_all(tasks, out))
    try:
        while (item := await out.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
        yield Usage(prompt_tokens=sum(len(p) for p in prepared.prompts), completion_tokens=generated[0])
    finally:
        for task in [*tasks, waiter]:
            task.cancel()
        await asyncio.gather(*tasks, waiter, return_exceptions=True)


async def _choice(
    backend: InferenceBackend, prepared: PreparedRequest, prompt_index: int, choice: int, generated: list[int]
) -> AsyncGenerator[ChoiceDelta, None]:
    """One choice's deltas, the last with its finish reason; counts its tokens in `generated`.
    One delta per hand-over of the backend (a fast model's tokens come a few at a time: one
    event, SSE frame and client parse for them all, not one per token)."""
    index = prompt_index * prepared.params.n + choice
    prompt = prepared.prompts[prompt_index]
    text = IncrementalText(prepared.text.tokenizer, prepared.params.stop, prompt)
    logprobs: list[TokenLogprob] | None = [] if prepared.params.logprobs is not None else None
    if prepared.echo_texts[prompt_index]:
        yield ChoiceDelta(index, prepared.echo_texts[prompt_index], [] if logprobs is not None else None)
    reason: Any = None
    piece = ""
    stream = backend.generate(
        new_id("gen", 16), prepared.target, prompt, sampling_params(prepared, prompt_index, choice)
    )
    async with contextlib.aclosing(stream):
        async for events in stream:
            for event in events:
                generated[0] += 1
                piece += text.add(event.token_id)
                if logprobs is not None:
                    logprobs.append(_logprob(prepared.text, event))
                if text.stopped:
                    reason = "stop"  # closing the stream aborts the backend request
                    break
                if event.finish_reason:
                    reason = event.finish_reason
                    piece += text.finish()
                    break
            if reason:
                break
            if piece:
                yield ChoiceDelta(index, piece, logprobs)
                piece = ""
                logprobs = [] if logprobs is not None else None
    yield ChoiceDelta(index, piece, logprobs, finish_reason=reason or "stop")


_DONE = object()


async def _wait_all(tasks: list[asyncio.Task], out: asyncio.Queue) -> None:
    """Put the first error (or _DONE once all choices finished) on the queue."""
    for finished in asyncio.as_completed(tasks):
        try:
            await finished
        except Exception as e:  # noqa: BLE001 - handed to the consumer
            await out.put(e)
            return
    await out.put(_DONE)


def _logprob(text: ModelText, event) -> TokenLogprob:
    return TokenLogprob(
        token=text.token_text(event.token_id),
        logprob=event.logprob,
        top=tuple((text.token_text(t), lp) for t, lp in event.top_logprobs),
    )
