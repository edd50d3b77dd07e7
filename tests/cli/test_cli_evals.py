"""`polytune evals create|run|show` against a live server: an eval made from the command line,
a run of the base model over a local JSONL file (uploaded with purpose evals), a jsonl run of
given samples, and what `show` prints of them."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import cli, ok_json

pytestmark = pytest.mark.sqlite_only
ITEMS = [
    {
        "item": {"question": "What is the capital of Zorbia?", "answer": "Quillon."},
        "sample": {"output_text": "Quillon."},
    },
    {
        "item": {"question": "What is the capital of Frellmark?", "answer": "Dunmere."},
        "sample": {"output_text": "Paris."},
    },
]


def test_evals_create_run_and_show(server, tmp_path):
    ev = ok_json(cli(server, "evals", "create", "--name", "facts", "--exact", "{{item.answer}}", "--json"))
    assert ev["testing_criteria"][0]["type"] == "string_check"
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(json.dumps(i) for i in ITEMS) + "\n")

    given = ok_json(cli(server, "evals", "run", ev["id"], "--items", str(path), "--json"))
    assert given["status"] == "completed" and given["result_counts"]["passed"] == 1
    sampled = cli(
        server, "evals", "run", ev["id"], "--items", str(path), "--model", "polytune-tiny", "--max-tokens", "8"
    )
    assert sampled.returncode == 0, sampled.stderr
    assert "completed pass rate" in sampled.stdout

    shown = cli(server, "evals", "show", ev["id"])
    assert shown.returncode == 0 and "polytune-tiny" in shown.stdout and "0.50" in shown.stdout
    run = cli(server, "evals", "show", ev["id"], given["id"], "--failed")
    assert run.returncode == 0 and "Paris." in run.stdout and "Quillon." not in run.stdout.split("criterion")[-1]
    bad = cli(server, "evals", "run", ev["id"], "--items", str(path), "--model", "no-such-model")
    assert bad.returncode == 5 and "data_source.model" in bad.stderr
