"""A served model's text side: its tokenizer and chat template, context length and stop tokens.

The tokenizer comes from the model's own folder: a fine-tuned model (or adapter) was saved
with the tokenizer and chat template it was trained with, so serving renders prompts exactly
as training did. A catalog model's template can be overridden in the catalog (training
applies the same override).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polytune.domain.errors import InvalidRequest
from polytune.domain.inference import ChatMessage

# Tokenizers report a huge model_max_length when they don't know it.
_UNKNOWN_LENGTH = 1_000_000


@dataclass(frozen=True)
class ModelText:
    tokenizer: Any
    context_length: int
    stop_token_ids: frozenset[int]

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


def load_model_text(
    weights_dir: Path | str, config_dir: Path | str, chat_template: str | None = None, **options: Any
) -> ModelText:
    """`weights_dir` holds the tokenizer (a model or adapter folder); `config_dir` the model config.
    `options`: the base model's catalog load_options (revision, trust_remote_code)."""
    from polytune.lazy_imports import from_transformers

    AutoConfig, AutoTokenizer, GenerationConfig = from_transformers(  # noqa: N806
        "AutoConfig", "AutoTokenizer", "GenerationConfig"
    )

    tokenizer = AutoTokenizer.from_pretrained(weights_dir, **options)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = AutoConfig.from_pretrained(config_dir, **options).get_text_config()
    lengths = [
        n
        for n in (getattr(config, "max_position_embeddings", None), tokenizer.model_max_length)
        if isinstance(n, int) and 0 < n < _UNKNOWN_LENGTH
    ]
    stops = set()
    if tokenizer.eos_token_id is not None:
        stops.add(tokenizer.eos_token_id)
    for folder in (weights_dir, config_dir):
        try:
            eos = GenerationConfig.from_pretrained(folder).eos_token_id
        except OSError:
            continue
        stops.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ModelText(
        tokenizer=tokenizer, context_length=min(lengths) if lengths else 2048, stop_token_ids=frozenset(stops)
    )


def render_chat(text: ModelText, model_id: str, messages: list[ChatMessage]) -> list[int]:
    """The prompt tokens for a conversation, through the model's chat template."""
    from jinja2 import TemplateError

    if not text.tokenizer.chat_template:
        raise InvalidRequest(
            f"The model '{model_id}' has no chat template; use the completions endpoint with a plain prompt.",
            param="model",
            code="no_chat_template",
        )
    conversation = [{"role": m.role, "content": m.content, **({"name": m.name} if m.name else {})} for m in messages]
    try:
        out = text.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=True, return_dict=True
        )
    except TemplateError as e:
        raise InvalidRequest(
            f"The model's chat template rejected the messages: {e}", param="messages", code="invalid_messages"
        ) from None
    return list(out["input_ids"])


def encode_prompt(text: ModelText, prompt: str | list[int], param: str) -> list[int]:
    """A completions prompt: text through the tokenizer, or token ids checked against the vocabulary."""
    vocab = len(text.tokenizer)
    if isinstance(prompt, str):
        ids = text.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if not ids and text.tokenizer.bos_token_id is not None:
            ids = [text.tokenizer.bos_token_id]
    else:
        bad = next((t for t in prompt if not 0 <= t < vocab), None)
        if bad is not None:
            raise InvalidRequest(f"Token id {bad} is outside the vocabulary (0..{vocab - 1}).", param=param)
        ids = list(prompt)
    if not ids:
        raise InvalidRequest("The prompt is empty.", param=param)
    return ids
