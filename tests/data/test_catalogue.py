"""Every file of the catalogue gets exactly its expected message (or is accepted), at upload
(no method) and at job creation (with the job's method), with the first 20 problems listed."""

from __future__ import annotations

import json

import pytest

from polytune.data.problems import DatasetError
from polytune.data.validate import validate_file
from tests.data.catalogue import CATALOGUE, CHAT, RL, jsonl


def test_the_catalogue_has_at_least_30_malformed_files():
    assert sum(expected is not None for *_, expected in CATALOGUE) >= 30


@pytest.mark.parametrize("name, data, method, expected", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_catalogue(tmp_path, name, data, method, expected):
    path = tmp_path / "data.jsonl"
    path.write_bytes(data)
    if expected is None:
        summary = validate_file(path, method=method)
        assert summary.n_examples >= 1
        return
    with pytest.raises(DatasetError) as caught:
        validate_file(path, method=method, param="training_file")
    message = caught.value.message
    assert message.startswith("Invalid training_file: ")
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert caught.value.param == "training_file"


def test_first_twenty_problems_listed_and_all_counted(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(CHAT, *(["{bad"] * 30), {"messages": [{"role": "bot", "content": "x"}]}))
    with pytest.raises(DatasetError) as caught:
        validate_file(path, method="supervised")
    err = caught.value
    assert err.total == 32  # 30 bad lines, then a bad role and no assistant on line 32
    assert len(err.problems) == 20 and err.problems[0].startswith("line 2: not valid JSON")
    assert "32 problems found" in err.message and "... and 12 more" in err.message
    assert "line 21:" in err.message and "line 22:" not in err.message


def test_min_examples(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(CHAT, CHAT))
    with pytest.raises(DatasetError, match="the file has 2 examples; at least 10 are needed"):
        validate_file(path, method="supervised", min_examples=10)


def test_grader_fields_must_be_in_every_row(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(RL, {"messages": RL["messages"]}))
    with pytest.raises(DatasetError) as caught:
        validate_file(path, method="reinforcement", item_fields=("reference_answer",))
    assert "line 2: reference_answer: missing; the grader reads {{item.reference_answer}}" in caught.value.message
    assert "line 1" not in caught.value.message


def test_messages_rows_at_upload_take_the_first_rows_kind(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(jsonl(RL, RL))
    summary = validate_file(path)
    assert (summary.format, summary.n_examples) == ("reinforcement", 2)
    path.write_bytes(jsonl(RL, {"messages": [RL["messages"][0], {"role": "assistant", "content": "x"}]}))
    with pytest.raises(
        DatasetError,
        match="line 2: a chat example .it ends with an assistant reply., but line 1 is a reinforcement prompt",
    ):
        validate_file(path)
    with pytest.raises(DatasetError, match="line 1: messages: expected at least one assistant message"):
        validate_file(path, method="supervised")  # once the method is known, it decides

    assert json.loads(path.read_text().splitlines()[0]) == RL


EDGE_MESSAGES = [
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0}],
    [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a", "weight": 0},
        {"role": "assistant", "content": "b", "weight": 1},
    ],
    [{"role": "user", "content": "q", "weight": 1}, {"role": "assistant", "content": "a"}],
    [{"role": "user", "content": " \n"}, {"role": "assistant", "content": "a"}],
    [{"role": "developer", "content": "d"}, {"role": "tool", "content": "t"}, {"role": "assistant", "content": "a"}],
    [{"role": ["user"], "content": "q"}, {"role": "assistant", "content": "a"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": True}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "name": "x"}],
    [{"role": "user", "content": "q"}],
]


@pytest.mark.parametrize("messages", EDGE_MESSAGES)
def test_the_fast_path_accepts_only_what_the_full_check_accepts(messages):
    from polytune.data.chat import chat_problems
    from polytune.data.messages import plain_messages_ok

    full = chat_problems({"messages": messages, "tools": []})  # "tools" forces the full check
    if plain_messages_ok(messages):
        assert full == []
    assert chat_problems({"messages": messages}) == full
