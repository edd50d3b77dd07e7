"""Reinforcement prompts: `{"messages": [...], "tools"?, ...any other fields}`.

The messages end where the model answers; every other field belongs to the grader, which
reads it through templates like `{{item.reference_answer}}` (SeekrFlow's rows carry
`reference_answer`). A grader that names a field the row lacks is caught here, before
training, with the line and the field.

TRL's form (GRPO's prompt-only conversational row) is `{"prompt": [messages], "tools"?,
...the other fields as they are}`: TRL hands extra columns to reward functions unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .messages import check_messages, check_tools, normalize_messages

# Columns TRL's GRPO trainer fills itself; a row's own field of that name would be lost.
RESERVED_FIELDS = ("prompt", "completion", "completions", "completion_ids", "trainer_state")
_ITEM_FIELD = re.compile(r"\{\{\s*item\.([A-Za-z_][A-Za-z0-9_]*)")


def item_fields(graders: Iterable[Any]) -> tuple[str, ...]:
    """The row fields grader templates read (`{{item.x}}` or `{{ item.x.y }}` need field x)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.update(_ITEM_FIELD.findall(value))
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(list(graders))
    return tuple(sorted(found))


def reinforcement_problems(obj: dict[str, Any], required_fields: tuple[str, ...] = ()) -> list[str]:
    problems: list[str] = []
    tool_names = check_tools(obj["tools"], "tools", problems) if "tools" in obj else None
    conv = check_messages(obj["messages"], "messages", problems, tool_names=tool_names, allow_weight=False)
    if conv is not None and conv.last_role == "assistant":
        problems.append(
            f"messages[{conv.n_messages - 1}].role: a reinforcement prompt ends with the message "
            "the model answers (user or tool), not with an assistant reply"
        )
    for name in RESERVED_FIELDS:
        if name in obj:
            problems.append(f"{name}: a field of this name is reserved for the trainer; rename it")
    for name in required_fields:
        if name not in obj:
            problems.append(f"{name}: missing; the grader reads {{{{item.{name}}}}}")
    return problems


def reinforcement_to_trl(obj: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in obj.items() if k != "messages"}
    row["prompt"] = normalize_messages(obj["messages"])
    return row
