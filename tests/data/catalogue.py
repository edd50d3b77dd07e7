"""The catalogue of malformed (and tricky but valid) training files, each with what polytune
must say about it. Each entry: (name, file bytes, method, expected message fragments).

Files are built from a few good rows so every entry differs from a valid file in exactly one
way; `None` as expected means the file must be accepted.
"""

from __future__ import annotations

import json

U = {"role": "user", "content": "What is the capital of France?"}
A = {"role": "assistant", "content": "Paris."}
S = {"role": "system", "content": "Answer briefly."}
CHAT = {"messages": [S, U, A]}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
TOOL_CHAT = {
    "tools": [WEATHER_TOOL],
    "messages": [
        U,
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 18}'},
        {"role": "assistant", "content": "18 degrees in Paris."},
    ],
}
OPENAI_PREF = {
    "input": {"messages": [U]},
    "preferred_output": [A],
    "non_preferred_output": [{"role": "assistant", "content": "Lyon."}],
}
RL = {"messages": [U], "reference_answer": "Paris"}


def jsonl(*rows, newline: str = "\n") -> bytes:
    return (newline.join(r if isinstance(r, str) else json.dumps(r) for r in rows) + newline).encode()


def good(n: int = 3, row=CHAT) -> list:
    return [row] * n


def with_message(message, *, at: int = 2) -> dict:
    messages = [S, U, A]
    messages[at] = message
    return {"messages": messages}


def tool_chat(**changes) -> dict:
    row = json.loads(json.dumps(TOOL_CHAT))
    for path, value in changes.items():
        target = row
        keys = path.split("__")
        for k in keys[:-1]:
            target = target[int(k)] if k.isdigit() else target[k]
        last = keys[-1]
        if value is ...:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return row


CATALOGUE: list[tuple[str, bytes, str | None, list[str] | None]] = [
    # -- reading the file --------------------------------------------------------------------
    (
        "truncated JSON",
        jsonl(CHAT, '{"messages": [{"role": "user", "content": "Hi"}', CHAT),
        None,
        ["line 2: not valid JSON (unexpected end of data at column"],
    ),
    (
        "trailing comma",
        jsonl(CHAT, '{"messages": [{"role": "user", "content": "Hi"},]}'),
        None,
        ["line 2: not valid JSON (trailing comma is not allowed at column 48)"],
    ),
    ("UTF-8 BOM is accepted", b"\xef\xbb\xbf" + jsonl(*good()), None, None),
    ("CRLF line ends are accepted", jsonl(*good(), newline="\r\n"), None, None),
    ("blank lines are accepted", jsonl(CHAT, "", "   ", CHAT, "\t"), None, None),
    (
        "invalid UTF-8",
        jsonl(CHAT) + b'{"messages": [{"role": "user", "content": "caf\xe9"}]}\n',
        None,
        ["line 2: not valid UTF-8 (byte 0xe9 at byte 47 of the line)"],
    ),
    (
        "a JSON array instead of JSONL",
        json.dumps(good()).encode(),
        None,
        ["line 1: the file is a JSON array, not JSON Lines"],
    ),
    (
        "a pretty-printed JSON array",
        json.dumps(good(), indent=2).encode(),
        None,
        ["line 1: the file is a JSON array, not JSON Lines"],
    ),
    (
        "a pretty-printed object",
        json.dumps(CHAT, indent=2).encode(),
        None,
        ["line 1: not valid JSON: the line holds only '{'; a JSON object spread over several lines"],
    ),
    ("a line that is a string", jsonl(CHAT, '"hello"'), None, ["line 2: expected a JSON object, got string"]),
    ("a line that is an array", jsonl(CHAT, "[1, 2]"), None, ["line 2: expected a JSON object, got array"]),
    ("NaN is not JSON", jsonl(CHAT, '{"prompt": "a", "completion": NaN}'), None, ["line 2: not valid JSON"]),
    (
        "two objects on one line",
        jsonl(CHAT, json.dumps(CHAT) + " " + json.dumps(CHAT)),
        None,
        ["line 2: not valid JSON (unexpected content after document"],
    ),
    ("an empty file", b"", None, ["the file holds no examples (it is empty or has only blank lines)"]),
    ("only blank lines", b"\n\n  \r\n", None, ["the file holds no examples"]),
    (
        "a 10 MB single line",
        b'{"text": "' + b"x" * (10 * 1024 * 1024) + b'"}\n' + jsonl(CHAT),
        None,
        ["line 1: the line is 10,485,773 bytes long; one example may be at most 8,388,608 bytes"],
    ),
    # -- chat rows -----------------------------------------------------------------------------
    (
        "messages is not a list",
        jsonl(CHAT, {"messages": "hello"}),
        "supervised",
        ["line 2: messages: expected a list of messages, got string"],
    ),
    (
        "empty messages",
        jsonl(CHAT, {"messages": []}),
        "supervised",
        ["line 2: messages: the list of messages is empty"],
    ),
    (
        "a message is not an object",
        jsonl(CHAT, {"messages": [U, "oops", A]}),
        "supervised",
        ["line 2: messages[1]: expected a message object, got string"],
    ),
    (
        "unknown role",
        jsonl(CHAT, with_message({"role": "wizard", "content": "x"}, at=0)),
        "supervised",
        ['line 2: messages[0].role: expected one of system, developer, user, assistant, tool, got "wizard"'],
    ),
    (
        "missing role",
        jsonl(CHAT, with_message({"content": "x"}, at=1)),
        "supervised",
        ["line 2: messages[1].role: missing"],
    ),
    (
        "no assistant message",
        jsonl(CHAT, {"messages": [S, U]}),
        "supervised",
        ["line 2: messages: expected at least one assistant message"],
    ),
    (
        "no assistant message, at upload",
        jsonl(CHAT, {"messages": [S, U]}),
        None,
        ["line 2: messages: expected at least one assistant message"],
    ),
    (
        "empty content",
        jsonl(CHAT, with_message({"role": "user", "content": "  "}, at=1)),
        "supervised",
        ["line 2: messages[1].content: empty"],
    ),
    (
        "missing content",
        jsonl(CHAT, with_message({"role": "assistant"})),
        "supervised",
        ["line 2: messages[2].content: missing"],
    ),
    (
        "content of the wrong type",
        jsonl(CHAT, with_message({"role": "assistant", "content": 5})),
        "supervised",
        ["line 2: messages[2].content: expected a string or a list of text parts, got number"],
    ),
    (
        "an image content part",
        jsonl(
            CHAT,
            with_message({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}, at=1),
        ),
        "supervised",
        ["line 2: messages[1].content[0].type: expected 'text' (polytune trains on text), got \"image_url\""],
    ),
    (
        "unknown message field",
        jsonl(CHAT, with_message({"role": "assistant", "content": "x", "contnet": "y"})),
        "supervised",
        ['line 2: messages[2]: unknown field "contnet"'],
    ),
    (
        "weight other than 0/1",
        jsonl(CHAT, with_message({**A, "weight": 0.5})),
        "supervised",
        ["line 2: messages[2].weight: expected 0 or 1, got 0.5"],
    ),
    (
        "weight true",
        jsonl(CHAT, with_message({**A, "weight": True})),
        "supervised",
        ["line 2: messages[2].weight: expected 0 or 1, got true"],
    ),
    (
        "weight on a user message",
        jsonl(CHAT, with_message({**U, "weight": 1}, at=1)),
        "supervised",
        ["line 2: messages[1].weight: only assistant messages have a weight"],
    ),
    (
        "every assistant weighted 0",
        jsonl(CHAT, with_message({**A, "weight": 0})),
        "supervised",
        ["line 2: messages: every assistant message has weight 0, so there is nothing to train on"],
    ),
    (
        "content parts are accepted",
        jsonl(
            CHAT,
            with_message(
                {"role": "assistant", "content": [{"type": "text", "text": "Par"}, {"type": "text", "text": "is."}]}
            ),
        ),
        "supervised",
        None,
    ),
    ("tool calls with tools are accepted", jsonl(CHAT, TOOL_CHAT), "supervised", None),
    (
        "tool_calls without a matching tool",
        jsonl(CHAT, tool_chat(messages__1__tool_calls__0__function__name="get_time")),
        "supervised",
        [
            'line 2: messages[1].tool_calls[0].function.name: "get_time" is not among the example\'s tools '
            "(declared: get_weather)"
        ],
    ),
    (
        "tool_calls with no tools at all",
        jsonl(CHAT, tool_chat(tools=...)),
        "supervised",
        ['line 2: messages[1].tool_calls[0].function.name: calls "get_weather", but the example declares no tools'],
    ),
    (
        "malformed function arguments",
        jsonl(CHAT, tool_chat(messages__1__tool_calls__0__function__arguments="{city: Paris}")),
        "supervised",
        ["line 2: messages[1].tool_calls[0].function.arguments: not valid JSON"],
    ),
    (
        "function arguments not an object",
        jsonl(CHAT, tool_chat(messages__1__tool_calls__0__function__arguments="[1]")),
        "supervised",
        ["line 2: messages[1].tool_calls[0].function.arguments: expected a JSON object, got array"],
    ),
    (
        "a tool answer to no call",
        jsonl(CHAT, tool_chat(messages__2__tool_call_id="call_9")),
        "supervised",
        ['line 2: messages[2].tool_call_id: "call_9" matches no earlier assistant tool call (ids so far: call_1)'],
    ),
    (
        "a tool message without tool_call_id",
        jsonl(CHAT, tool_chat(messages__2__tool_call_id=...)),
        "supervised",
        ["line 2: messages[2].tool_call_id: missing"],
    ),
    (
        "parallel calls when parallel_tool_calls is false",
        jsonl(CHAT, tool_chat(parallel_tool_calls=False, messages__1__tool_calls=[CALL, {**CALL, "id": "call_2"}])),
        "supervised",
        ["line 2: messages[1].tool_calls: 2 tool calls in one message, but parallel_tool_calls is false"],
    ),
    (
        "a tool declared twice",
        jsonl(CHAT, tool_chat(tools=[WEATHER_TOOL, WEATHER_TOOL])),
        "supervised",
        ['line 2: tools[1].function.name: "get_weather" is declared twice'],
    ),
    # -- other supervised formats ----------------------------------------------------------------
    (
        "prompt/completion of the wrong types",
        jsonl({"prompt": "p", "completion": "c"}, {"prompt": 1, "completion": ["c"]}),
        "supervised",
        ["line 2: prompt: expected a string, got number", "line 2: completion: expected a string, got array"],
    ),
    (
        "empty completion",
        jsonl({"prompt": "p", "completion": "c"}, {"prompt": "p", "completion": ""}),
        "supervised",
        ["line 2: completion: empty"],
    ),
    (
        "prompt without completion",
        jsonl({"prompt": "p", "completion": "c"}, {"prompt": "p"}),
        "supervised",
        [
            "line 2: expected a prompt/completion example like line 1, got not a known example format: found an object "
            'with "prompt" ("prompt" alone is not an example: add a "completion")'
        ],
    ),
    ("empty text", jsonl({"text": "some text"}, {"text": ""}), "supervised", ["line 2: text: empty"]),
    (
        "mixed formats in one file",
        jsonl(CHAT, {"prompt": "p", "completion": "c"}, {"text": "t"}),
        "supervised",
        [
            "line 2: expected a chat example like line 1, got a prompt/completion example",
            "line 3: expected a chat example like line 1, got a text example",
        ],
    ),
    (
        "an unknown format",
        jsonl({"question": "q", "answer": "a"}),
        None,
        ['line 1: not a known example format: found an object with "question", "answer"'],
    ),
    # -- the format must fit the method ----------------------------------------------------------
    (
        "a preference file for a supervised job",
        jsonl(OPENAI_PREF),
        "supervised",
        ["line 1 is a preference example (openai shape), but a supervised job needs chat"],
    ),
    ("a chat file for a dpo job", jsonl(CHAT), "dpo", ["line 1 is a chat example, but a dpo job needs preference"]),
    # -- preference rows ---------------------------------------------------------------------------
    ("openai preference is accepted", jsonl(*good(row=OPENAI_PREF)), "dpo", None),
    (
        "preference row missing a side",
        jsonl(OPENAI_PREF, {k: v for k, v in OPENAI_PREF.items() if k != "non_preferred_output"}),
        "dpo",
        [
            "line 2: non_preferred_output: missing (a preference example needs both preferred_output and "
            "non_preferred_output)"
        ],
    ),
    (
        "identical chosen and rejected",
        jsonl(OPENAI_PREF, {**OPENAI_PREF, "non_preferred_output": [A]}),
        "dpo",
        ["line 2: preferred_output and non_preferred_output are identical"],
    ),
    (
        "seekr preference with identical sides",
        jsonl({"messages": [U], "chosen": "Paris.", "rejected": "Paris."}),
        "dpo",
        ["line 1: chosen and rejected are identical"],
    ),
    (
        "trl preference missing rejected",
        jsonl({"prompt": "Capital of France?", "chosen": "Paris"}),
        "dpo",
        ["line 1: rejected: missing"],
    ),
    (
        "preference output from the user",
        jsonl({**OPENAI_PREF, "preferred_output": [U]}),
        "dpo",
        ["line 1: preferred_output[0].role: expected 'assistant'"],
    ),
    (
        "a standard prompt with conversational sides",
        jsonl({"prompt": "Q?", "chosen": [A], "rejected": "B"}),
        "dpo",
        ["line 1: chosen: expected a string like the prompt, got array"],
    ),
    (
        "standard and conversational pairs mixed",
        jsonl(OPENAI_PREF, {"prompt": "Q?", "chosen": "A", "rejected": "B"}),
        "dpo",
        ["line 2: expected a conversational (messages) preference example like line 1, got a standard (strings) one"],
    ),
    # -- reinforcement rows ------------------------------------------------------------------------
    ("reinforcement prompts are accepted", jsonl(*good(row=RL)), "reinforcement", None),
    (
        "a reinforcement prompt ending with the answer",
        jsonl(RL, {"messages": [U, A], "reference_answer": "Paris"}),
        "reinforcement",
        ["line 2: messages[1].role: a reinforcement prompt ends with the message the model answers"],
    ),
    (
        "a reserved field in a reinforcement row",
        jsonl({**RL, "completion": "x"}),
        "reinforcement",
        ["line 1: completion: a field of this name is reserved for the trainer"],
    ),
]
