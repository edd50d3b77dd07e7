"""The interface between serving and whatever runs the model.

A backend turns prompt token ids into generated token ids. Everything around that —
resolving model ids, chat templates, detokenizing, stop strings, choices, usage, the wire
format — lives above it, so a backend only has to do what engines are good at:

- `TransformersBackend` (hf_backend.py): transformers + peft on one engine thread, one base
  model in memory serving many LoRA adapters, continuous batching.
- `ProcessBackend` (process_backend.py, the default): that engine in a process of its own
  (engine_process.py), so the model's Python runs under its own GIL, not the API server's.
- a vLLM backend would map `generate` onto `AsyncLLMEngine.generate(TokensPrompt(prompt_ids),
  SamplingParams(...), request_id, lora_request=LoRARequest(adapter_key, n, adapter_dir))`,
  `abort` onto `engine.abort`, and keep one engine per `base_key`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from polytune.domain.errors import InvalidRequest
from polytune.inference.hand_over import HandOver


@dataclass(frozen=True)
class ModelTarget:
    """What a request runs on: one set of weights, optionally with a LoRA adapter on top.

    Keys are stable identities (a catalog name or a fine-tuned model id): requests with the
    same base_key share one copy of the base weights and may be batched together.
    """

    base_key: str
    base_dir: Path | str  # a local folder (or a hub id for a hub catalog entry)
    adapter_key: str | None = None
    adapter_dir: Path | None = None
    # The catalog entry's load_options (a hub id's revision, the remote-code opt-in), as pairs.
    base_options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None
    stop_token_ids: frozenset[int] = frozenset()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    # None: no logprobs; k >= 0: the chosen token's logprob and the k most likely tokens.
    logprobs: int | None = None
    # The logprob of each prompt token given the ones before it (the first has none: NaN).
    prompt_logprobs: bool = False


@dataclass(frozen=True)
class TokenEvent:
    """One generated token. The last event of a request has a finish_reason: "stop" when the
    token is one of stop_token_ids, "length" when max_tokens was reached."""

    token_id: int
    logprob: float | None = None
    top_logprobs: tuple[tuple[int, float], ...] = ()
    finish_reason: Literal["stop", "length"] | None = None
    prompt_logprobs: tuple[float, ...] | None = None  # on the first event, when asked for


class InferenceBackend(Protocol):
    def generate(
        self, request_id: str, target: ModelTarget, prompt_ids: list[int], params: SamplingParams
    ) -> AsyncGenerator[list[TokenEvent], None]:
        """Generated tokens in order, in hand-overs: each list (never empty) holds what was
        generated since the last one (a backend may hand over at most so often; vLLM's outputs
        come the same way); the event with a finish_reason ends its list and the stream.
        Closing the iterator early aborts the request."""
        ...

    def abort(self, request_id: str) -> None:
        """Stop a request (no more events); unknown or finished ids are ignored."""
        ...

    def forget(self, key: str) -> None:
        """A model or adapter was deleted: free its weights once no request uses them."""
        ...

    def stats(self) -> dict[str, Any]:
        """What is loaded and how much memory it takes (for /health-style reporting and tests)."""
        ...

    def close(self) -> None: ...


def ends_stream(event: TokenEvent | BaseException) -> bool:
    """Whether this is a request's last item: its finishing token, or the error that ended it."""
    return isinstance(event, BaseException) or event.finish_reason is not None


class TokenStream:
    """A request's tokens as a backend's `generate` yields them, from the hand-over its engine
    puts them in: each take's tokens as one list, an error raised after what came before it, and
    the end after the finishing token. `ended` tells the backend whether the request ran to its
    end (else closing the stream early must abort it)."""

    def __init__(self, hand_over: HandOver[TokenEvent | BaseException]):
        self.hand_over = hand_over
        self.ended = False

    async def events(self) -> AsyncGenerator[list[TokenEvent], None]:
        while True:
            events: list[TokenEvent] = []
            for event in await self.hand_over.take():
                if isinstance(event, BaseException):
                    self.ended = True
                    if events:
                        yield events  # what came before the error, then the error
                    raise event
                events.append(event)
                if event.finish_reason is not None:
                    self.ended = True
                    break
            if events:
                yield events
            if self.ended:
                return


async def each_token(hand_overs: AsyncGenerator[list[TokenEvent], None]) -> AsyncGenerator[TokenEvent, None]:
    """A backend's hand-overs one token at a time, for a consumer that takes them so (closing
    this closes the backend's stream, which aborts the request)."""
    async with contextlib.aclosing(hand_overs):
        async for events in hand_overs:
            for event in events:
                yield event


class NonFiniteModel(InvalidRequest):
    """The model computes NaN or infinite scores (its weights are not finite: the training that
    made it diverged). A 400 naming the model, not a server error: nothing can be served from it."""

    code = "model_not_finite"

    def __init__(self, target: ModelTarget):
        name = target.adapter_key or target.base_key
        super().__init__(
            f"The model '{name}' produces non-finite values (its weights are NaN or infinite, "
            "so the training that made it diverged); it cannot be served. Fine-tune it again with "
            "a lower learning_rate_multiplier.",
            param="model",
        )
