"""What a caller asks a served model for, and what comes back, in no vendor's words.

Dialects translate their chat/completions requests into these; the inference service turns
them into token-level work for a backend and its results into `ChoiceDelta`s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class ChatMessage:
    role: str  # system | user | assistant (a dialect maps its own roles onto these)
    content: str
    name: str | None = None


@dataclass(frozen=True)
class GenerationParams:
    # None: as many as the context leaves room for (a dialect sets its own default).
    max_tokens: int | None = None
    # Which request field max_tokens came from, so a context-length error names it.
    max_tokens_param: str = "max_tokens"
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)
    # None: no logprobs; k >= 0: each chosen token's logprob and the k most likely alternatives.
    logprobs: int | None = None
    echo: bool = False


@dataclass(frozen=True)
class ServedModel:
    """A model id resolved for serving: which weights, and how they are stacked."""

    id: str
    kind: Literal["base", "full", "lora"]
    # The catalog name the weights start from (for a base model, its own name).
    base_model: str
    # Where a fine-tuned model's weights live in blob storage; None for a catalog model.
    blob_key: str | None = None


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass
class ChoiceDelta:
    """New text for one choice; the last delta of a choice carries its finish_reason."""

    index: int
    text: str
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason | None = None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens
