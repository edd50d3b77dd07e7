"""Plain-text supervised formats: `{"prompt", "completion"}` (loss on the completion) and
`{"text"}` (continued pre-training: loss on every token). TRL's standard rows have the same
keys, so conversion keeps exactly these fields."""

from __future__ import annotations

from typing import Any

from .problems import is_blank, json_type


def prompt_completion_problems(obj: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(obj["prompt"], str):
        problems.append(f"prompt: expected a string, got {json_type(obj['prompt'])}")
    completion = obj["completion"]
    if not isinstance(completion, str):
        problems.append(f"completion: expected a string, got {json_type(completion)}")
    elif is_blank(completion):
        problems.append("completion: empty (it is the text the model learns to write)")
    return problems


def prompt_completion_to_trl(obj: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": obj["prompt"], "completion": obj["completion"]}


def text_problems(obj: dict[str, Any]) -> list[str]:
    text = obj["text"]
    if not isinstance(text, str):
        return [f"text: expected a string, got {json_type(text)}"]
    if is_blank(text):
        return ["text: empty"]
    return []


def text_to_trl(obj: dict[str, Any]) -> dict[str, Any]:
    return {"text": obj["text"]}
