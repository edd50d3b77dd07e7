"""Preference pairs, in the three shapes users bring, converted to one internal form.

- OpenAI: `{"input": {"messages", "tools"?}, "preferred_output": [assistant messages],
  "non_preferred_output": [assistant messages]}`
- SeekrFlow: `{"messages": [...], "chosen", "rejected"}`, each side a string, an assistant
  message, or a list of assistant messages
- TRL: `{"prompt"?, "chosen", "rejected"}`, all strings (standard) or all messages
  (conversational); without "prompt" the prompt is implicit in both sides

The internal form is TRL's own preference row, so conversion to TRL is the identity:
conversational `{"prompt": [messages], "chosen": [assistant messages], "rejected": [...],
"tools"?: [...]}` (messages in their normal form), or standard `{"prompt"?: str, "chosen": str,
"rejected": str}`.
"""

from __future__ import annotations

from typing import Any

from .messages import check_messages, check_tools, normalize_messages
from .problems import is_blank, json_type

PREFERENCE_KEYS = ("preferred_output", "non_preferred_output", "chosen", "rejected")


def preference_shape(obj: dict[str, Any]) -> str:
    """openai | seekr | trl (from the keys; the row's content is checked elsewhere)."""
    if "preferred_output" in obj or "non_preferred_output" in obj or "input" in obj:
        return "openai"
    if "messages" in obj:
        return "seekr"
    return "trl"


def is_conversational(obj: dict[str, Any]) -> bool:
    """Whether the row converts to messages (True) or to TRL's standard strings (False); one
    file must hold one kind, as a trainer's dataset does."""
    if preference_shape(obj) != "trl":
        return True
    return isinstance(obj.get("prompt"), list) or ("prompt" not in obj and isinstance(obj.get("chosen"), list))


# (prompt field, chosen field, rejected field) per shape, for paths in messages.
_FIELDS = {
    "openai": ("input.messages", "preferred_output", "non_preferred_output"),
    "seekr": ("messages", "chosen", "rejected"),
    "trl": ("prompt", "chosen", "rejected"),
}


def preference_problems(obj: dict[str, Any]) -> list[str]:
    shape = preference_shape(obj)
    prompt_at, chosen_at, rejected_at = _FIELDS[shape]
    problems: list[str] = []
    missing = [f for f in (chosen_at, rejected_at) if f not in obj]
    for f in missing:
        problems.append(f"{f}: missing (a preference example needs both {chosen_at} and {rejected_at})")
    tool_names = None
    if shape == "openai":
        prompt = obj.get("input")
        if not isinstance(prompt, dict):
            problems.append(
                f"input: expected an object with 'messages', got {json_type(prompt) if 'input' in obj else 'nothing'}"
            )
            prompt = None
        else:
            if "tools" in prompt:
                tool_names = check_tools(prompt["tools"], "input.tools", problems)
            prompt = prompt.get("messages")
            if prompt is None:
                problems.append("input.messages: missing")
    else:
        prompt = obj.get("messages" if shape == "seekr" else "prompt")
        if "tools" in obj:
            tool_names = check_tools(obj["tools"], "tools", problems)
    conversational = shape != "trl" or isinstance(prompt, list)
    if prompt is not None:
        if isinstance(prompt, str) and shape == "trl":
            if is_blank(prompt):
                problems.append("prompt: empty")
        else:
            conv = check_messages(prompt, prompt_at, problems, tool_names=tool_names, allow_weight=False)
            if conv is not None and conv.last_role == "assistant":
                problems.append(
                    f"{prompt_at}: the prompt ends with an assistant message; it should end "
                    "with the message the two outputs answer"
                )
    elif shape == "trl":
        conversational = isinstance(obj.get("chosen"), list)  # implicit prompt: the sides decide
    if missing:
        return problems
    sides = []
    for at in (chosen_at, rejected_at):
        side = _side_problems(
            obj[at], at, problems, conversational=conversational, allow_string=shape != "openai", tool_names=tool_names
        )
        sides.append(side)
    if sides[0] is not None and sides[0] == sides[1]:
        problems.append(f"{chosen_at} and {rejected_at} are identical; a preference pair needs two different outputs")
    return problems


def _side_problems(
    side: Any, at: str, problems: list[str], *, conversational: bool, allow_string: bool, tool_names: set[str] | None
) -> Any:
    """Check one output; returns its normal form to compare the two sides (None if unusable)."""
    if isinstance(side, str):
        if not allow_string:
            problems.append(f"{at}: expected a list of assistant messages, got string")
            return None
        if is_blank(side):
            problems.append(f"{at}: empty")
            return None
        return side
    if not conversational:
        problems.append(f"{at}: expected a string like the prompt, got {json_type(side)}")
        return None
    if isinstance(side, dict) and allow_string:
        side = [side]  # SeekrFlow allows one assistant message
    before = len(problems)
    conv = check_messages(side, at, problems, tool_names=tool_names, allow_weight=False)
    if conv is None or len(problems) > before:
        return None
    for i, message in enumerate(side):
        if message.get("role") != "assistant":
            problems.append(
                f"{at}[{i}].role: expected 'assistant' (an output is the model's reply), got {message.get('role')!r}"
            )
            return None
    return normalize_messages(side)


def preference_to_canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """The internal (= TRL) form of a checked preference row."""
    shape = preference_shape(obj)
    _, chosen_at, rejected_at = _FIELDS[shape]
    tools = None
    if shape == "openai":
        prompt: Any = obj["input"]["messages"]
        tools = obj["input"].get("tools")
    elif shape == "seekr":
        prompt = obj["messages"]
        tools = obj.get("tools")
    else:
        prompt = obj.get("prompt")
        tools = obj.get("tools")
    conversational = is_conversational(obj)
    row: dict[str, Any] = {}
    if prompt is not None:
        row["prompt"] = normalize_messages(prompt) if conversational else prompt
    row["chosen"] = _side(obj[chosen_at], conversational)
    row["rejected"] = _side(obj[rejected_at], conversational)
    if tools:
        row["tools"] = tools
    return row


def _side(side: Any, conversational: bool) -> Any:
    if not conversational:
        return side
    if isinstance(side, str):
        return [{"role": "assistant", "content": side}]
    if isinstance(side, dict):
        side = [side]
    return normalize_messages(side)
