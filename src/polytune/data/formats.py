"""Which format a row is in, which formats each training method takes, and each format's
check and converter to TRL.

Formats: chat, prompt_completion, text (supervised); preference (dpo); reinforcement. A row
with "messages" is a chat example for a supervised job and a reinforcement prompt for a
reinforcement job; when the method is not known yet (at upload) it is a chat example if its
last message is the assistant's and a reinforcement prompt otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .chat import chat_problems, chat_to_trl
from .completion import prompt_completion_problems, prompt_completion_to_trl, text_problems, text_to_trl
from .images import image_caption_problems, image_caption_row
from .preference import PREFERENCE_KEYS, preference_problems, preference_shape, preference_to_canonical
from .reinforcement import reinforcement_problems, reinforcement_to_trl

Format = Literal["chat", "prompt_completion", "text", "preference", "reinforcement", "image_caption", "unknown"]
FORMATS: tuple[str, ...] = ("chat", "prompt_completion", "text", "preference", "reinforcement", "image_caption")
METHOD_FORMATS: dict[str, tuple[str, ...]] = {
    "supervised": ("chat", "prompt_completion", "text"),
    "dpo": ("preference",),
    "reinforcement": ("reinforcement",),
    "image_generation": ("image_caption",),
}
# Formats that are both a list of "messages": the file's format decides which a row is.
MESSAGE_FORMATS = frozenset(("chat", "reinforcement"))
# Kept for callers of the first version of this module.
SUPERVISED_FORMATS = METHOD_FORMATS["supervised"]

LABELS: dict[str, str] = {
    "chat": 'chat ({"messages": [...]} with assistant replies)',
    "prompt_completion": 'prompt/completion ({"prompt", "completion"})',
    "text": 'raw text ({"text"})',
    "preference": 'preference ({"input", "preferred_output", "non_preferred_output"}, '
    '{"messages", "chosen", "rejected"} or {"prompt", "chosen", "rejected"})',
    "reinforcement": 'reinforcement ({"messages": [...]} ending where the model answers, plus grader fields)',
    "image_caption": 'image/caption ({"image": "data:image/png;base64,...", "caption"})',
}


@dataclass(frozen=True)
class FormatSpec:
    # (row, grader fields the rows must have) -> problems as "field.path: what is wrong"
    check: Callable[[dict[str, Any], tuple[str, ...]], list[str]]
    to_trl: Callable[[dict[str, Any]], dict[str, Any]]


SPECS: dict[str, FormatSpec] = {
    "chat": FormatSpec(lambda o, _: chat_problems(o), chat_to_trl),
    "prompt_completion": FormatSpec(lambda o, _: prompt_completion_problems(o), prompt_completion_to_trl),
    "text": FormatSpec(lambda o, _: text_problems(o), text_to_trl),
    "preference": FormatSpec(lambda o, _: preference_problems(o), preference_to_canonical),
    "reinforcement": FormatSpec(reinforcement_problems, reinforcement_to_trl),
    "image_caption": FormatSpec(lambda o, _: image_caption_problems(o), image_caption_row),
}


def detect_format(obj: dict[str, Any], method: str | None = None) -> Format:
    """Which kind of example a row is, from its keys (its content is checked elsewhere)."""
    for key in PREFERENCE_KEYS:
        if key in obj:
            return "preference"
    if "image" in obj and "caption" in obj:
        return "image_caption"
    if "messages" in obj:
        if method == "reinforcement":
            return "reinforcement"
        if method is None and not _ends_with_assistant(obj["messages"]):
            return "reinforcement"
        return "chat"
    if "prompt" in obj and "completion" in obj:
        return "prompt_completion"
    if "text" in obj:
        return "text"
    return "unknown"


def _ends_with_assistant(messages: Any) -> bool:
    return (
        isinstance(messages, list)
        and bool(messages)
        and isinstance(messages[-1], dict)
        and messages[-1].get("role") == "assistant"
    )


def describe_row(obj: dict[str, Any], fmt: str) -> str:
    if fmt == "preference":
        return f"a preference example ({preference_shape(obj)} shape)"
    if fmt != "unknown":
        return f"a {fmt.replace('_', '/')} example"
    keys = ", ".join(f'"{k}"' for k in list(obj)[:6]) or "no fields"
    return f"an object with {keys}"


def unknown_row_problem(obj: dict[str, Any]) -> str:
    hint = ""
    if "prompt" in obj:
        hint = ' ("prompt" alone is not an example: add a "completion")'
    elif "completion" in obj:
        hint = ' ("completion" needs a "prompt")'
    elif "input" in obj:
        hint = ' ("input" needs "preferred_output" and "non_preferred_output")'
    return f"not a known example format: found {describe_row(obj, 'unknown')}{hint}; expected one of " + "; ".join(
        LABELS[f] for f in FORMATS
    )


def method_formats_text(method: str) -> str:
    return " or ".join(LABELS[f] for f in METHOD_FORMATS[method])


_MOVED = {
    "to_trl_rows": "convert",
    "iter_jsonl": "jsonl",
    "DatasetError": "problems",
    "DatasetSummary": "validate",
    "validate_supervised_file": "validate",
}


def __getattr__(name: str) -> Any:
    """Names the first version of this module held, now in their own modules (read lazily:
    those modules import this one)."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"polytune.data.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
