"""The CLI's usage errors and narrow terminals, with no server: an unknown option or command,
a missing argument or a bad value is one line on stderr and exit code 2, never a traceback;
`--version` prints the version; `polytune` alone prints the help and exits 0; tables keep ids
whole in 80 columns."""

from __future__ import annotations

import os
import subprocess

import pytest

from polytune import __version__
from tests.conftest import BIN


def run(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "polytune"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "COLUMNS": str(columns),
            "POLYTUNE_API_KEY": "sk-none",
            "POLYTUNE_BASE_URL": "http://127.0.0.1:9",
        },
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bogus"], "No such option: --bogus"),
        (["jobs", "list", "--bogus"], "No such option: --bogus"),
        (["files", "nope"], "No such command 'nope'"),
        (["files", "upload"], "Missing argument"),
        (["jobs", "create", "-t", "file-x"], "Missing option '--model'"),
        (["jobs", "list", "--limit", "many"], "Invalid value for '--limit'"),
        (["files", "upload", "/no/such/file.jsonl"], "does not exist"),
        (["models", "download", "ft:x", "--format", "onnx"], "'onnx' is not one of adapter, merged, gguf"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, says):
    result = run(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and says in result.stderr
    assert "Traceback" not in result.stderr and "--help" in result.stderr


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"polytune {__version__}"


def test_a_connection_error_names_the_server_and_exits_5():
    result = run("jobs", "list")
    assert result.returncode == 5 and result.stderr.count("\n") == 1 and "127.0.0.1:9" in result.stderr


def test_tables_keep_ids_whole_in_80_columns():
    from types import SimpleNamespace

    from rich.console import Console

    from polytune.cli import api

    long_id = "ft:polytune-tiny:org-a:a-long-suffix:abcdef123456:ckpt-step-120"
    rows = [SimpleNamespace(id=long_id, owner="org-a", created="2026-12-04 21:30:00")] * 2
    columns = [("id", lambda m: m.id), ("owned by", lambda m: m.owner), ("created", lambda m: m.created)]
    for width in (80, 50):
        console = Console(width=width, record=True, highlight=False, soft_wrap=True)
        api.out = console
        api.show(rows, columns, json_out=False)
        text = console.export_text()
        assert text.count(long_id) == 2, text
        assert all(len(line) <= width for line in text.splitlines() if long_id not in line), text


def test_keys_create_in_an_empty_data_dir_says_where_it_wrote(tmp_path):
    env = {**os.environ, "POLYTUNE_DATA_DIR": str(tmp_path / "new")}
    env.pop("POLYTUNE_DATABASE_URL", None)
    first = subprocess.run(
        [str(BIN / "polytune"), "keys", "create", "--org", "o"], env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip().splitlines()[-1].startswith("pt-")  # the key stays the last line
    assert str(tmp_path / "new") in first.stderr and "POLYTUNE_DATA_DIR" in first.stderr
    second = subprocess.run(
        [str(BIN / "polytune"), "keys", "create", "--org", "o"], env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0 and "POLYTUNE_DATA_DIR" not in second.stderr
    assert str(tmp_path / "new" / "polytune.db") in second.stderr


@pytest.mark.parametrize("args", [[], ["files"], ["jobs"]])
def test_no_arguments_prints_the_help_and_exits_0(args):
    # Asking for nothing is asking for the help: on stdout, as --help, with no `error:` line.
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert "Usage: polytune" in result.stdout and "Commands" in result.stdout
    assert result.stderr == ""
