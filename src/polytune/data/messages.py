"""Conversations in OpenAI's chat format: checked field by field, and normalised.

Shared by every format that holds messages: chat (supervised), the prompt and outputs of a
preference pair, a reinforcement prompt. Each check appends "path: what is wrong" strings,
where the path is the field inside the row (`messages[2].tool_calls[0].function.arguments`).

The normal form of a message (what the converters hand to TRL, and what a chat template
renders) is `{"role", "content"}` plus, when given, `name`, `weight` (assistant only),
`tool_calls` (assistant only: `{"id", "type": "function", "function": {"name",
"arguments": <object>}}`, arguments parsed from OpenAI's JSON string because chat
templates expect a mapping) and `tool_call_id` (tool only). Text content parts are joined
into one string: OpenAI reads them as one text, and templates render a string everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .problems import is_blank, json_type, show

ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool")
_ROLE_SET = frozenset(ROLES)
# Roles a message may have on the fast path: a tool message needs its tool_call_id checked.
_PLAIN_ROLES = frozenset(("system", "developer", "user", "assistant"))
MESSAGE_FIELDS: tuple[str, ...] = ("role", "content", "name", "weight", "tool_calls", "tool_call_id")
_MESSAGE_FIELD_SET = frozenset(MESSAGE_FIELDS)


@dataclass
class Conversation:
    """What the checks learned about a list of messages, for the format's own rules."""

    n_messages: int = 0
    n_assistant: int = 0
    n_trained: int = 0  # assistant messages with weight 1 (the default)
    last_role: str | None = None
    tool_call_ids: set[str] = field(default_factory=set)


def plain_messages_ok(messages: Any) -> bool:
    """True when every message is a plain {"role", "content"(, "weight")} with non-empty text
    and a known role, and at least one assistant message is trained.

    The fast path of validation: most rows of most files look like this, and this check costs
    a fraction of parsing the line. Whatever it accepts, check_messages accepts too.
    """
    if type(messages) is not list or not messages:
        return False
    trained = False
    for m in messages:
        if type(m) is not dict:
            return False
        role = m.get("role")
        content = m.get("content")
        if (
            type(content) is not str
            or type(role) is not str
            or role not in _PLAIN_ROLES
            or not content
            or content.isspace()
        ):
            return False
        n_fields = len(m)
        if n_fields == 2:  # both looked up above, so exactly role and content
            if role == "assistant":
                trained = True
        elif n_fields == 3 and role == "assistant" and "weight" in m:
            w = m["weight"]
            if type(w) is not int or (w != 0 and w != 1):
                return False
            if w == 1:
                trained = True
        else:
            return False
    return trained


def check_tools(tools: Any, where: str, problems: list[str]) -> set[str] | None:
    """The function names a `tools` list declares (None when the list itself is unusable)."""
    if not isinstance(tools, list):
        problems.append(f"{where}: expected a list of tools, got {json_type(tools)}")
        return None
    names: set[str] = set()
    for i, tool in enumerate(tools):
        at = f"{where}[{i}]"
        fn, name = _function(tool, at, problems, "a tool", "parameters")
        if fn is None:
            continue
        if name in names:
            problems.append(f"{at}.function.name: {show(name)} is declared twice")
        elif name is not None:
            names.add(name)
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            problems.append(
                f"{at}.function.parameters: expected a JSON schema object, got {json_type(fn['parameters'])}"
            )
    return names


def check_messages(
    messages: Any,
    where: str,
    problems: list[str],
    *,
    tool_names: set[str] | None = None,
    parallel_tool_calls: bool = True,
    allow_weight: bool = True,
) -> Conversation | None:
    """Check a list of messages; None when `messages` is not a list at all."""
    if not isinstance(messages, list):
        problems.append(f"{where}: expected a list of messages, got {json_type(messages)}")
        return None
    conv = Conversation(n_messages=len(messages))
    if not messages:
        problems.append(f"{where}: the list of messages is empty")
        return conv
    answered: set[str] = set()
    for i, message in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(message, dict):
            problems.append(f"{at}: expected a message object, got {json_type(message)}")
            continue
        role = message.get("role")
        if "role" not in message:
            problems.append(f"{at}.role: missing")
        elif not isinstance(role, str) or role not in _ROLE_SET:
            problems.append(f"{at}.role: expected one of {', '.join(ROLES)}, got {show(role)}")
        unknown = [k for k in message if k not in _MESSAGE_FIELD_SET]
        if unknown:
            problems.append(f"{at}: unknown field {show(unknown[0])} (a message has {', '.join(MESSAGE_FIELDS)})")
        has_calls = role == "assistant" and bool(message.get("tool_calls"))
        _check_content(message, at, problems, may_be_empty=has_calls)
        if "name" in message and not isinstance(message["name"], str):
            problems.append(f"{at}.name: expected a string, got {json_type(message['name'])}")
        weight = message.get("weight", 1)
        if "weight" in message:
            if not allow_weight:
                problems.append(f"{at}.weight: not used here; weights belong to supervised chat examples")
            elif role != "assistant":
                problems.append(f"{at}.weight: only assistant messages have a weight")
            elif type(weight) is not int or weight not in (0, 1):
                problems.append(f"{at}.weight: expected 0 or 1, got {show(weight)}")
        if "tool_calls" in message:
            if role != "assistant":
                problems.append(f"{at}.tool_calls: only assistant messages make tool calls")
            else:
                _check_tool_calls(
                    message["tool_calls"],
                    f"{at}.tool_calls",
                    problems,
                    tool_names,
                    parallel_tool_calls,
                    conv.tool_call_ids,
                )
        if role == "tool":
            _check_tool_answer(message, at, problems, conv.tool_call_ids, answered)
        elif "tool_call_id" in message:
            problems.append(f"{at}.tool_call_id: only tool messages answer a tool call")
        if role == "assistant":
            conv.n_assistant += 1
            conv.n_trained += weight != 0
        conv.last_role = role if isinstance(role, str) else None
    return conv


def _check_content(message: dict[str, Any], at: str, problems: list[str], *, may_be_empty: bool) -> None:
    if "content" not in message:
        if not may_be_empty:
            problems.append(f"{at}.content: missing")
        return
    content = message["content"]
    if content is None:
        if not may_be_empty:
            problems.append(f"{at}.content: expected a string, got null")
        return
    if isinstance(content, str):
        if is_blank(content) and not may_be_empty:
            problems.append(f"{at}.content: empty")
        return
    if not isinstance(content, list):
        problems.append(f"{at}.content: expected a string or a list of text parts, got {json_type(content)}")
        return
    text = []
    for j, part in enumerate(content):
        part_at = f"{at}.content[{j}]"
        if not isinstance(part, dict):
            problems.append(f"{part_at}: expected a content part object, got {json_type(part)}")
        elif part.get("type") != "text":
            problems.append(f"{part_at}.type: expected 'text' (polytune trains on text), got {show(part.get('type'))}")
        elif not isinstance(part.get("text"), str):
            problems.append(f"{part_at}.text: expected a string, got {json_type(part.get('text'))}")
        else:
            text.append(part["text"])
    if len(text) == len(content) and is_blank("".join(text)) and not may_be_empty:
        problems.append(f"{at}.content: empty")


def _check_tool_calls(
    calls: Any, at: str, problems: list[str], tool_names: set[str] | None, parallel: bool, seen_ids: set[str]
) -> None:
    if not isinstance(calls, list):
        problems.append(f"{at}: expected a list of tool calls, got {json_type(calls)}")
        return
    if not parallel and len(calls) > 1:
        problems.append(f"{at}: {len(calls)} tool calls in one message, but parallel_tool_calls is false")
    for k, call in enumerate(calls):
        call_at = f"{at}[{k}]"
        if not isinstance(call, dict):
            problems.append(f"{call_at}: expected a tool call object, got {json_type(call)}")
            continue
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            problems.append(f"{call_at}.id: expected a non-empty string, got {show(call_id)}")
        elif call_id in seen_ids:
            problems.append(f"{call_at}.id: {show(call_id)} is used by an earlier tool call")
        else:
            seen_ids.add(call_id)
        fn, name = _function(call, call_at, problems, None, "arguments")
        if fn is None:
            continue
        if name is not None and tool_names is None:
            problems.append(
                f"{call_at}.function.name: calls {show(name)}, but the example declares no tools (add a 'tools' list)"
            )
        elif name is not None and name not in tool_names:  # type: ignore[operator]
            declared = ", ".join(sorted(tool_names)) or "none"
            problems.append(
                f"{call_at}.function.name: {show(name)} is not among the example's tools (declared: {declared})"
            )
        _check_arguments(fn.get("arguments"), f"{call_at}.function.arguments", problems, "arguments" in fn)


def _function(
    obj: Any, at: str, problems: list[str], what: str | None, second: str
) -> tuple[dict[str, Any] | None, str | None]:
    """The `function` object of a tool or a tool call, and its name (None where unusable)."""
    if what is not None and not isinstance(obj, dict):
        problems.append(f"{at}: expected {what} object, got {json_type(obj)}")
        return None, None
    if obj.get("type", "function") != "function":
        problems.append(f"{at}.type: expected 'function', got {show(obj.get('type'))}")
    fn = obj.get("function")
    if not isinstance(fn, dict):
        problems.append(
            f"{at}.function: expected an object with 'name' and '{second}', "
            f"got {json_type(fn) if 'function' in obj else 'nothing'}"
        )
        return None, None
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{at}.function.name: expected a non-empty string, got {show(name)}")
        return fn, None
    return fn, name


def _check_arguments(arguments: Any, at: str, problems: list[str], present: bool) -> None:
    if not present:
        problems.append(f'{at}: missing (a JSON object encoded as a string, e.g. "{{}}")')
        return
    if isinstance(arguments, dict):
        return  # already decoded: accepted as it is what the string would decode to
    if not isinstance(arguments, str):
        problems.append(f"{at}: expected a JSON object encoded as a string, got {json_type(arguments)}")
        return
    try:
        decoded = orjson.loads(arguments)
    except orjson.JSONDecodeError as e:
        problems.append(f"{at}: not valid JSON ({e.msg} at character {e.pos + 1}): {show(arguments)}")
        return
    if not isinstance(decoded, dict):
        problems.append(f"{at}: expected a JSON object, got {json_type(decoded)}")


def _check_tool_answer(
    message: dict[str, Any], at: str, problems: list[str], issued: set[str], answered: set[str]
) -> None:
    call_id = message.get("tool_call_id")
    if "tool_call_id" not in message:
        problems.append(f"{at}.tool_call_id: missing (a tool message answers an assistant tool call)")
    elif not isinstance(call_id, str):
        problems.append(f"{at}.tool_call_id: expected a string, got {json_type(call_id)}")
    elif call_id not in issued:
        known = ", ".join(sorted(issued)) or "none"
        problems.append(
            f"{at}.tool_call_id: {show(call_id)} matches no earlier assistant tool call (ids so far: {known})"
        )
    elif call_id in answered:
        problems.append(f"{at}.tool_call_id: {show(call_id)} was already answered")
    else:
        answered.add(call_id)


# -- the normal form ----------------------------------------------------------------------------
def normalize_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Checked messages in their normal form (see the module's docstring)."""
    return [normalize_message(m) for m in messages]


def normalize_message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if len(message) == 2 and type(content) is str:
        return {"role": message["role"], "content": content}  # the common message, already normal
    if isinstance(content, list):
        content = "".join(part["text"] for part in content)
    out: dict[str, Any] = {"role": message["role"], "content": content}
    if "name" in message:
        out["name"] = message["name"]
    if "weight" in message:
        out["weight"] = message["weight"]
    if message.get("tool_calls"):
        out["tool_calls"] = [_normalize_call(c) for c in message["tool_calls"]]
    if "tool_call_id" in message:
        out["tool_call_id"] = message["tool_call_id"]
    return out


def _normalize_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = call["function"]
    arguments = fn["arguments"]
    if isinstance(arguments, str):
        arguments = orjson.loads(arguments)
    return {"id": call["id"], "type": "function", "function": {"name": fn["name"], "arguments": arguments}}
