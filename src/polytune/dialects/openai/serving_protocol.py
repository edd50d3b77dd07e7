"""OpenAI wire models for serving: what the `openai` SDK sends to chat.completions and
completions. Range checks live here, so a bad value is a 400 that names its field."""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from .protocol import Wire

Penalty = Field(default=None, ge=-2.0, le=2.0)


class ContentPart(BaseModel):
    # Other part types (images, audio, files) parse, and are then refused by name in translate.
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class MessageIn(Wire):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Union[str, list[ContentPart], None] = None
    name: str | None = None
    # Tool use is not served yet: these parse so the refusal can name them.
    tool_calls: Any = None
    tool_call_id: str | None = None
    function_call: Any = None
    refusal: str | None = None
    audio: Any = None


class StreamOptions(Wire):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class SamplingFields(Wire):
    model: str
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    n: int | None = Field(default=None, ge=1, le=128)
    stop: Union[str, list[str], None] = None
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**63 - 128)
    presence_penalty: float | None = Penalty
    frequency_penalty: float | None = Penalty
    logit_bias: dict[str, float] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None


class ChatCompletionRequest(SamplingFields):
    messages: list[MessageIn] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    # Accepted and ignored: they change nothing about what a self-hosted model generates.
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    parallel_tool_calls: bool | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    # Not served: refused by name when set.
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    web_search_options: Any = None


class CompletionRequest(SamplingFields):
    prompt: Union[str, list[str], list[int], list[list[int]]]
    max_tokens: int | None = Field(default=16, ge=1)
    logprobs: int | None = Field(default=None, ge=0, le=5)
    echo: bool | None = None
    best_of: int | None = Field(default=None, ge=1)
    suffix: str | None = None
