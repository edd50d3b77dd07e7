"""OpenAI serving wire <-> domain: requests become messages/prompts and GenerationParams;
choice deltas become chat.completion(.chunk) and text_completion objects."""

from __future__ import annotations

import time
from typing import Any

from polytune.domain.errors import InvalidRequest
from polytune.domain.ids import new_id
from polytune.domain.inference import ChatMessage, ChoiceDelta, GenerationParams, TokenLogprob, Usage

from .serving_protocol import ChatCompletionRequest, CompletionRequest, MessageIn, SamplingFields

_UNSERVED = (
    "tools",
    "tool_choice",
    "functions",
    "function_call",
    "audio",
    "modalities",
    "prediction",
    "web_search_options",
)
# OpenAI's "developer" messages are what other chat templates call "system" messages.
_ROLES = {"developer": "system"}


# -- requests ---------------------------------------------------------------------------------
def _stop(value: str | list[str] | None) -> tuple[str, ...]:
    stops = [value] if isinstance(value, str) else list(value or [])
    if len(stops) > 4:
        raise InvalidRequest("stop may hold at most 4 sequences.", param="stop")
    return tuple(s for s in stops if s)


def _logit_bias(value: dict[str, float] | None) -> dict[int, float]:
    out = {}
    for key, bias in (value or {}).items():
        if not key.lstrip("-").isdigit():
            raise InvalidRequest(f"logit_bias keys are token ids; got '{key}'.", param="logit_bias")
        if not -100 <= bias <= 100:
            raise InvalidRequest(
                f"logit_bias values must be between -100 and 100; got {bias}.", param=f"logit_bias.{key}"
            )
        out[int(key)] = float(bias)
    return out


def _params(req: SamplingFields, **extra: Any) -> GenerationParams:
    return GenerationParams(
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        n=req.n or 1,
        stop=_stop(req.stop),
        seed=req.seed,
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        logit_bias=_logit_bias(req.logit_bias),
        **extra,
    )


def _content(message: MessageIn, i: int) -> str:
    if message.content is None:
        raise InvalidRequest(f"messages[{i}].content is required.", param=f"messages[{i}].content")
    if isinstance(message.content, str):
        return message.content
    texts = []
    for j, part in enumerate(message.content):
        if part.type != "text" or part.text is None:
            raise InvalidRequest(
                f"Content parts of type '{part.type}' are not supported; send text.",
                param=f"messages[{i}].content[{j}].type",
            )
        texts.append(part.text)
    return "".join(texts)


def chat_request(req: ChatCompletionRequest) -> tuple[list[ChatMessage], GenerationParams]:
    for name in _UNSERVED:
        if getattr(req, name) is not None:
            raise InvalidRequest(
                f"'{name}' is not supported by polytune's chat completions.", param=name, code="unsupported_parameter"
            )
    if req.response_format and req.response_format.get("type") != "text":
        raise InvalidRequest(
            "Only response_format {'type': 'text'} is supported.",
            param="response_format.type",
            code="unsupported_parameter",
        )
    messages = []
    for i, m in enumerate(req.messages):
        for name in ("tool_calls", "tool_call_id", "function_call", "audio"):
            if getattr(m, name) is not None:
                raise InvalidRequest(
                    f"messages[{i}].{name}: tool use is not supported.",
                    param=f"messages[{i}].{name}",
                    code="unsupported_parameter",
                )
        if m.role in ("tool", "function"):
            raise InvalidRequest(
                f"messages[{i}].role '{m.role}' is not supported (no tool use).",
                param=f"messages[{i}].role",
                code="unsupported_parameter",
            )
        messages.append(ChatMessage(role=_ROLES.get(m.role, m.role), content=_content(m, i), name=m.name))
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs to be true.", param="top_logprobs")
    max_param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    return messages, _params(
        req,
        max_tokens=req.max_completion_tokens or req.max_tokens,
        max_tokens_param=max_param,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
    )


def completion_request(req: CompletionRequest) -> tuple[list[str | list[int]], GenerationParams]:
    if req.suffix:
        raise InvalidRequest("'suffix' is not supported.", param="suffix", code="unsupported_parameter")
    if req.best_of is not None and req.best_of != (req.n or 1):
        raise InvalidRequest("best_of other than n is not supported.", param="best_of", code="unsupported_parameter")
    if req.echo and req.logprobs is not None:
        raise InvalidRequest(
            "echo with logprobs (prompt logprobs) is not supported.", param="echo", code="unsupported_parameter"
        )
    prompt = req.prompt
    if isinstance(prompt, str) or (prompt and isinstance(prompt[0], int)):
        prompts = [prompt]
    else:
        prompts = list(prompt)
    if not prompts:
        raise InvalidRequest("prompt must not be empty.", param="prompt")
    return prompts, _params(req, max_tokens=req.max_tokens, logprobs=req.logprobs, echo=bool(req.echo))


# -- responses --------------------------------------------------------------------------------
def usage(u: Usage) -> dict[str, int]:
    return {"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens, "total_tokens": u.total_tokens}


def _token(lp: TokenLogprob) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.token.encode())}


def chat_logprobs(items: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    return {
        "content": [{**_token(lp), "top_logprobs": [_token(TokenLogprob(t, v)) for t, v in lp.top]} for lp in items],
        "refusal": None,
    }


def completion_logprobs(items: list[TokenLogprob] | None, offset: int) -> dict[str, Any] | None:
    if items is None:
        return None
    offsets = []
    for lp in items:
        offsets.append(offset)
        offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in items],
        "token_logprobs": [lp.logprob for lp in items],
        "top_logprobs": [dict(lp.top) for lp in items],
        "text_offset": offsets,
    }


class ChatRenderer:
    """One chat.completion response, whole or as chat.completion.chunk events."""

    def __init__(self, model: str, include_usage: bool):
        self.id, self.created, self.model = new_id("chatcmpl"), int(time.time()), model
        self.include_usage = include_usage
        self._started: set[int] = set()

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model, "system_fingerprint": None}

    def whole(self, choices: list[ChoiceDelta], u: Usage) -> dict[str, Any]:
        return {
            **self._head("chat.completion"),
            "usage": usage(u),
            "choices": [
                {
                    "index": c.index,
                    "finish_reason": c.finish_reason,
                    "logprobs": chat_logprobs(c.logprobs),
                    "message": {"role": "assistant", "content": c.text, "refusal": None},
                }
                for c in choices
            ],
        }

    def chunk(self, item: ChoiceDelta | Usage) -> dict[str, Any] | None:
        if isinstance(item, Usage):
            return (
                {**self._head("chat.completion.chunk"), "choices": [], "usage": usage(item)}
                if self.include_usage
                else None
            )
        delta: dict[str, Any] = {}
        if item.index not in self._started:  # a choice's first chunk names the role
            self._started.add(item.index)
            delta = {"role": "assistant", "content": item.text}
        elif item.text:
            delta = {"content": item.text}
        out = {
            **self._head("chat.completion.chunk"),
            "choices": [
                {
                    "index": item.index,
                    "delta": delta,
                    "finish_reason": item.finish_reason,
                    "logprobs": chat_logprobs(item.logprobs),
                }
            ],
        }
        if self.include_usage:
            out["usage"] = None  # OpenAI's chunks carry usage: null until the last one
        return out


class CompletionRenderer:
    """One text_completion response, whole or as streamed text_completion chunks."""

    def __init__(self, model: str, include_usage: bool):
        self.id, self.created, self.model = new_id("cmpl"), int(time.time()), model
        self.include_usage = include_usage
        self._offsets: dict[int, int] = {}  # text sent so far per choice, for logprobs' text_offset

    def _render(self, choices: list[ChoiceDelta], u: Usage | None) -> dict[str, Any]:
        out = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": c.index,
                    "text": c.text,
                    "finish_reason": c.finish_reason,
                    "logprobs": completion_logprobs(c.logprobs, self._offsets.get(c.index, 0)),
                }
                for c in choices
            ],
        }
        if u is not None:
            out["usage"] = usage(u)
        return out

    def whole(self, choices: list[ChoiceDelta], u: Usage) -> dict[str, Any]:
        return self._render(choices, u)

    def chunk(self, item: ChoiceDelta | Usage) -> dict[str, Any] | None:
        if isinstance(item, Usage):
            return self._render([], item) if self.include_usage else None
        out = self._render([item], None)
        self._offsets[item.index] = self._offsets.get(item.index, 0) + len(item.text)
        return out
