"""The `polytune` CLI against a live server, through the same HTTP API as everyone else
(POLYTUNE_BASE_URL, POLYTUNE_API_KEY): files, jobs (with `jobs follow` exiting with the job's
outcome), models and keys, `--json` on the read commands."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import BIN
from tests.helpers import chat_jsonl, wait_for

# The CLI is a client of the HTTP API: what the database does behind it the API tests prove on
# both backends, so its tests run once, on the SQLite server.
pytestmark = pytest.mark.sqlite_only


def cli(server, *args: str, key: str | None = None, input: str | None = None, timeout: float = 300):
    env = {**server.env, "POLYTUNE_BASE_URL": server.url, "POLYTUNE_API_KEY": key or server.key_a, "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "polytune"), *args], env=env, capture_output=True, text=True, input=input, timeout=timeout
    )


def ok_json(result):
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def upload(server, tmp_path, name: str, n: int) -> str:
    path = tmp_path / name
    path.write_bytes(chat_jsonl(n))
    return ok_json(cli(server, "files", "upload", str(path), "--json"))["id"]


def test_files_and_keys(server, tmp_path):
    file_id = upload(server, tmp_path, "train.jsonl", 12)
    assert file_id in {f["id"] for f in ok_json(cli(server, "files", "list", "--json"))}
    shown = ok_json(cli(server, "files", "show", file_id, "--json"))
    assert shown["filename"] == "train.jsonl" and shown["purpose"] == "fine-tune"
    table = cli(server, "files", "list")
    assert table.returncode == 0 and file_id in table.stdout and "train.jsonl" in table.stdout
    assert cli(server, "files", "rm", file_id).returncode == 0
    missing = cli(server, "files", "show", file_id)
    assert missing.returncode == 5 and "error:" in missing.stderr

    # Keys are administered on the server's own database; a revoked key is refused at once.
    created = cli(server, "keys", "create", "--org", "org-cli")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert cli(server, "files", "list", key=key).returncode == 0
    keys = ok_json(cli(server, "keys", "list", "--org", "org-cli", "--json"))
    (listed,) = keys
    assert key.startswith(listed["prefix"]) and listed["revoked_at"] is None and key not in json.dumps(keys)
    assert cli(server, "keys", "revoke", listed["id"]).returncode == 0
    refused = cli(server, "files", "list", key=key)
    assert refused.returncode == 5 and "API key" in refused.stderr


def test_follow_exits_with_failed_and_cancelled(server, tmp_path):
    # Too few examples: the job fails validation without training.
    small = upload(server, tmp_path, "small.jsonl", 3)
    job = ok_json(cli(server, "jobs", "create", "--model", "polytune-tiny", "-t", small, "--json"))
    failed = cli(server, "jobs", "follow", job["id"], "--interval", "0.2")
    assert failed.returncode == 1 and "failed" in failed.stderr

    data = upload(server, tmp_path, "train.jsonl", 12)
    job = ok_json(cli(server, "jobs", "create", "--model", "polytune-tiny", "-t", data, "--n-epochs", "50", "--json"))
    cancelled = cli(server, "jobs", "cancel", job["id"])
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert cli(server, "jobs", "follow", job["id"]).returncode == 3
    bad = cli(server, "jobs", "create", "--model", "polytune-tiny", "-t", "file-nope")
    assert bad.returncode == 5 and "training_file" in bad.stderr


@pytest.mark.slow
def test_a_job_from_create_to_pause_resume_and_success(server, tmp_path, client):
    data = upload(server, tmp_path, "train.jsonl", 16)
    job = ok_json(
        cli(
            server,
            "jobs",
            "create",
            "--model",
            "polytune-tiny",
            "-t",
            data,
            # 96 steps: a fast machine ran the 24 of 3 epochs before `polytune jobs pause` had started.
            "--n-epochs",
            "12",
            "--batch-size",
            "2",
            "--suffix",
            "cli",
            "--metadata",
            "from=cli",
            "--json",
        )
    )
    assert job["metadata"] == {"from": "cli"}
    wait_for(lambda: client.fine_tuning.jobs.retrieve(job["id"]).status == "running", 120, 0.1)
    assert cli(server, "jobs", "pause", job["id"]).returncode == 0
    assert cli(server, "jobs", "follow", job["id"], "--interval", "0.3").returncode == 4  # paused

    assert "queued" in cli(server, "jobs", "resume", job["id"]).stdout
    followed = cli(server, "jobs", "follow", job["id"], "--interval", "0.3")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert "96/96" in followed.stdout and "fine-tuned model: ft:polytune-tiny:org-a:cli:" in followed.stdout
    assert "Pausing" in followed.stdout and "resumed" in followed.stdout  # the events, as they came

    shown = ok_json(cli(server, "jobs", "show", job["id"], "--json"))
    assert shown["status"] == "succeeded" and shown["trained_steps"] == 96
    assert job["id"] in {j["id"] for j in ok_json(cli(server, "jobs", "list", "--status", "succeeded", "--json"))}
    events = ok_json(cli(server, "jobs", "events", job["id"], "--limit", "200", "--json"))
    assert any(e["type"] == "metrics" for e in events) and "succeeded" in cli(server, "jobs", "list").stdout

    model = shown["fine_tuned_model"]
    assert model in {m["id"] for m in ok_json(cli(server, "models", "list", "--json"))}
    assert cli(server, "models", "rm", model).returncode == 0
    assert model not in {m["id"] for m in ok_json(cli(server, "models", "list", "--json"))}


def test_upload_of_a_bad_file_exits_1_and_quiet_prints_the_id(server, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(chat_jsonl(12))
    quiet = cli(server, "files", "upload", str(good), "-q")
    assert quiet.returncode == 0 and quiet.stdout.strip().startswith("file-") and len(quiet.stdout.split()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    failed = cli(server, "files", "upload", str(bad))
    assert failed.returncode == 1 and "file-" in failed.stdout
    assert failed.stderr.startswith("error: bad.jsonl failed validation:") and "line" in failed.stderr


def test_chat_refuses_a_model_it_cannot_chat_with_before_the_first_prompt(server):
    for model in ("ft:polytune-tiny:nobody:x:abc", "polytune-tiny-diffusion"):
        refused = cli(server, "chat", model, input="hello\n")
        assert refused.returncode == 5 and refused.stderr.startswith("error: ") and not refused.stdout, model
    # /help and /reset are answered here, never sent to the model.
    local = cli(server, "chat", "polytune-tiny", input="/help\n/reset\n")
    assert local.returncode == 0 and "/reset starts a new conversation" in local.stderr and not local.stdout


def test_files_download_resumes_a_partial_download(server, tmp_path):
    data = chat_jsonl(300)
    file_id = upload(server, tmp_path, "big.jsonl", 300)
    target = tmp_path / "out" / "big.jsonl"
    target.parent.mkdir()  # a folder: the file goes in it under its own name
    got = cli(server, "files", "download", file_id, "-o", str(target.parent))
    assert got.returncode == 0, got.stderr
    assert target.read_bytes() == data and not list(target.parent.glob("*.part"))

    # Interrupted after 5000 bytes: the run again fetches the rest and the file is whole.
    part = target.with_name("big.jsonl.part")
    target.replace(part)
    with part.open("r+b") as f:
        f.truncate(5000)
    got = cli(server, "files", "download", file_id, "-o", str(target))
    assert got.returncode == 0, got.stderr
    assert target.read_bytes() == data and not part.exists()

    # The bytes already there are kept, not fetched again (a Range request, not a fresh download).
    part.write_bytes(b"\0" * 5000)
    assert cli(server, "files", "download", file_id, "-o", str(target)).returncode == 0
    assert target.read_bytes() == b"\0" * 5000 + data[5000:]

    # A .part longer than the file is no piece of it: the download starts over.
    part.write_bytes(b"\0" * (len(data) + 10))
    assert cli(server, "files", "download", file_id, "-o", str(target)).returncode == 0
    assert target.read_bytes() == data and not part.exists()
