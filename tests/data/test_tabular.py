"""Question/answer tables (CSV, TSV, Parquet, JSONL) become chat examples; bad tables are
named by file, column and row."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from polytune.data.formats import DatasetError
from polytune.data.tabular import question_answer_examples

ROWS = [("What colour is the sky?", "Blue"), ("How many legs has a cat?", "4"), ('Say "hi", please', "hi")]


def _write(tmp_path, suffix: str, rows=ROWS, q="question", a="answer"):
    path = tmp_path / f"table{suffix}"
    if suffix in (".csv", ".tsv"):
        sep = "," if suffix == ".csv" else "\t"
        quote = (lambda v: '"' + v.replace('"', '""') + '"') if sep == "," else (lambda v: v)
        path.write_text(f"{q}{sep}{a}\n" + "".join(f"{quote(x)}{sep}{quote(y)}\n" for x, y in rows))
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({q: x, a: y, "extra": 1}) + "\n" for x, y in rows))
    else:
        pq.write_table(pa.table({q: [x for x, _ in rows], a: [y for _, y in rows]}), path)
    return path


def _read(path, **kw):
    return question_answer_examples(
        path,
        filename=kw.pop("filename", path.name),
        question_column=kw.pop("q", "question"),
        answer_column=kw.pop("a", "answer"),
    )


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_format_becomes_the_same_chat_examples(tmp_path, suffix):
    examples = _read(_write(tmp_path, suffix))
    assert examples == [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in ROWS
    ]


def test_custom_columns_and_numbers_are_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("prompt,response,n\nTwo plus two?,4,1\nThree plus three?,6,2\n")
    examples = _read(path, q="prompt", a="response")
    # A column of numbers is typed as numbers by the reader; the answer is still text.
    assert [e["messages"][1]["content"] for e in examples] == ["4", "6"]


def test_the_suffix_comes_from_the_name_not_the_local_path(tmp_path):
    blob = _write(tmp_path, ".csv").rename(tmp_path / "blob-without-suffix")
    assert len(_read(blob, filename="data/train.csv")) == len(ROWS)


def test_missing_column_lists_the_columns_there(tmp_path):
    with pytest.raises(DatasetError) as e:
        _read(_write(tmp_path, ".csv"), a="reply")
    assert e.value.param == "training_params.answer_column"
    assert "no column 'reply'" in e.value.message and "'question', 'answer'" in e.value.message


def test_empty_cells_are_named_by_row(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"question": "ok?", "answer": "yes"},
                {"question": "  ", "answer": "x"},
                {"question": "q", "answer": None},
            ]
        )
        + "\n"
    )
    with pytest.raises(DatasetError) as e:
        _read(path)
    assert e.value.problems == ["row 2: 'question' is empty", "row 3: 'answer' is empty"]


@pytest.mark.parametrize(
    "name,content,needle",
    [
        ("t.txt", "question,answer\na,b\n", "can't read a '.txt' file"),
        ("t.parquet", "this is not parquet", "not a readable parquet file"),
        ("t.csv", "question,answer\n", "has no rows"),
    ],
)
def test_unreadable_tables_say_why(tmp_path, name, content, needle):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DatasetError, match=needle) as e:
        _read(path)
    assert e.value.param == "resource"
