"""Conversion to TRL's formats keeps everything that trains: tool calls and their arguments,
weights, tools, grader fields; the three preference shapes become one form; tabular files
map their columns."""

from __future__ import annotations

import json

import pytest

from polytune.data.convert import iter_trl_rows, to_trl_rows, trl_dataset
from polytune.data.formats import detect_format
from polytune.data.problems import DatasetError
from polytune.data.columns import read_tabular, tabular_to_jsonl
from polytune.data.validate import validate_file
from tests.data.catalogue import A, CHAT, OPENAI_PREF, RL, TOOL_CHAT, U, jsonl


def _file(tmp_path, *rows, name="data.jsonl"):
    path = tmp_path / name
    path.write_bytes(jsonl(*rows))
    return path


def test_chat_with_tools_parts_and_weights(tmp_path):
    parts = {
        "messages": [
            U,
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Par"}, {"type": "text", "text": "is."}],
                "weight": 0,
            },
            U,
            {**A, "name": "bot"},
        ]
    }
    path = _file(tmp_path, TOOL_CHAT, parts)
    rows = to_trl_rows(path)
    assert rows[0]["tools"] == TOOL_CHAT["tools"]
    call = rows[0]["messages"][1]["tool_calls"][0]
    assert call == {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    assert rows[0]["messages"][2] == {"role": "tool", "content": '{"temp": 18}', "tool_call_id": "call_1"}
    assert rows[1]["messages"][1] == {"role": "assistant", "content": "Paris.", "weight": 0}
    assert rows[1]["messages"][3] == {"role": "assistant", "content": "Paris.", "name": "bot"}


def test_trl_dataset_is_lossless(tmp_path):
    other_call = json.loads(json.dumps(TOOL_CHAT))
    other_call["messages"][1]["tool_calls"][0]["function"]["arguments"] = '{"town": "Lyon", "days": 2}'
    rows = to_trl_rows(_file(tmp_path, TOOL_CHAT, other_call, CHAT))
    back = [{k: v for k, v in r.items() if v is not None} for r in trl_dataset(rows)]
    assert back == rows  # no key widened to the union of the rows' keys, no null added


def test_reinforcement_keeps_grader_fields_as_they_are(tmp_path):
    rows = [{**RL, "reference_answer": "Paris", "meta": {"id": 1}}, {**RL, "reference_answer": "42", "meta": [1]}]
    trl = to_trl_rows(_file(tmp_path, *rows), method="reinforcement")
    assert trl[0] == {"prompt": [U], "reference_answer": "Paris", "meta": {"id": 1}}
    back = list(trl_dataset(trl))
    assert back[1]["reference_answer"] == "42" and back[1]["meta"] == [1]  # the string stays a string


def test_the_three_preference_shapes_become_one(tmp_path):
    seekr = {"messages": [U], "chosen": "Paris.", "rejected": "Lyon."}
    trl = {"prompt": [U], "chosen": [A], "rejected": [{"role": "assistant", "content": "Lyon."}]}
    converted = [
        to_trl_rows(_file(tmp_path, row, name=f"{i}.jsonl"), method="dpo")[0]
        for i, row in enumerate((OPENAI_PREF, seekr, trl))
    ]
    assert (
        converted[0]
        == converted[1]
        == converted[2]
        == {"prompt": [U], "chosen": [A], "rejected": [{"role": "assistant", "content": "Lyon."}]}
    )
    standard = {"prompt": "The capital of France is", "chosen": " Paris.", "rejected": " Lyon."}
    assert to_trl_rows(_file(tmp_path, standard), method="dpo") == [standard]
    tools = {**OPENAI_PREF, "input": {**OPENAI_PREF["input"], "tools": TOOL_CHAT["tools"]}}
    assert to_trl_rows(_file(tmp_path, tools), method="dpo")[0]["tools"] == TOOL_CHAT["tools"]


def test_plain_formats(tmp_path):
    assert to_trl_rows(_file(tmp_path, {"prompt": "p", "completion": "c", "id": 3})) == [
        {"prompt": "p", "completion": "c"}
    ]
    assert to_trl_rows(_file(tmp_path, {"text": "t"})) == [{"text": "t"}]


def test_detect_format():
    assert detect_format(CHAT) == "chat"
    assert detect_format(RL) == "reinforcement" and detect_format(RL, "supervised") == "chat"
    assert detect_format(CHAT, "reinforcement") == "reinforcement"
    assert detect_format({"prompt": "p", "completion": "c"}) == "prompt_completion"
    assert detect_format({"text": "t"}) == "text"
    assert detect_format(OPENAI_PREF) == detect_format({"chosen": "a"}) == "preference"
    assert detect_format({"foo": 1}) == "unknown"


def test_conversion_refuses_a_row_of_another_format(tmp_path):
    with pytest.raises(DatasetError, match="line 2: not a chat example"):
        list(iter_trl_rows(_file(tmp_path, CHAT, {"text": "t"})))


def test_tabular_files_with_a_column_mapping(tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text('question,answer\nWhat is 2+2?,4\n"Say ""hi""",hi\n')
    rows = list(read_tabular(csv, {"prompt": "question", "completion": "answer"}))
    assert rows == [(1, {"prompt": "What is 2+2?", "completion": "4"}), (2, {"prompt": 'Say "hi"', "completion": "hi"})]
    with pytest.raises(DatasetError, match="column 'q' is not in the file .its columns: question, answer"):
        list(read_tabular(csv, {"prompt": "q", "completion": "answer"}))

    import pandas as pd

    parquet = tmp_path / "chat.parquet"
    pd.DataFrame({"conversation": [CHAT["messages"]] * 2, "n": [1, 2]}).to_parquet(parquet)
    out = tmp_path / "chat.jsonl"
    assert tabular_to_jsonl(parquet, out, {"messages": "conversation"}) == 2
    assert validate_file(out, method="supervised").n_examples == 2
    assert to_trl_rows(out)[0] == {"messages": CHAT["messages"]}

    array = tmp_path / "rows.json"
    array.write_text(json.dumps([{"prompt": "p", "completion": "c"}, {"prompt": "q", "completion": ""}]))
    tabular_to_jsonl(array, out)
    with pytest.raises(DatasetError, match="line 2: completion: empty"):
        validate_file(out, method="supervised")
