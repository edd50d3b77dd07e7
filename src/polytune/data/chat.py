"""Chat examples for supervised training: `{"messages": [...], "tools"?, "parallel_tool_calls"?}`.

OpenAI's format: roles system/developer/user/assistant/tool, string or text-part content,
`weight` 0/1 on assistant messages (0: shown as context, not trained), `tools` with assistant
`tool_calls` and tool answers. TRL's conversational language-modeling row is the same shape
with the messages in their normal form (messages.py); `parallel_tool_calls` has no TRL column
and is enforced here instead (false: at most one call per assistant message).
"""

from __future__ import annotations

from typing import Any

from .messages import check_messages, check_tools, normalize_messages, plain_messages_ok
from .problems import json_type

CHAT_FIELDS = ("messages", "tools", "parallel_tool_calls")


def chat_problems(obj: dict[str, Any]) -> list[str]:
    if len(obj) == 1 and plain_messages_ok(obj["messages"]):
        return []  # the common case, checked at parsing speed
    problems: list[str] = []
    tool_names = check_tools(obj["tools"], "tools", problems) if "tools" in obj else None
    parallel = obj.get("parallel_tool_calls", True)
    if not isinstance(parallel, bool):
        problems.append(f"parallel_tool_calls: expected true or false, got {json_type(parallel)}")
        parallel = True
    conv = check_messages(obj["messages"], "messages", problems, tool_names=tool_names, parallel_tool_calls=parallel)
    if conv is not None and conv.n_messages:
        if conv.n_assistant == 0:
            problems.append("messages: expected at least one assistant message (the reply to train on)")
        elif conv.n_trained == 0:
            problems.append("messages: every assistant message has weight 0, so there is nothing to train on")
    return problems


def chat_to_trl(obj: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"messages": normalize_messages(obj["messages"])}
    if obj.get("tools"):
        row["tools"] = obj["tools"]
    return row
