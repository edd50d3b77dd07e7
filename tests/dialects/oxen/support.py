"""Talking to a live server as an Oxen.ai user does: the `oxenai` client (in its own venv, as a
subprocess) to push data, and plain HTTP for the fine-tune API."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[3]
OXEN_PYTHON = Path(os.environ.get("POLYTUNE_OXEN_PYTHON", ROOT / ".venv-oxen" / "bin" / "python"))
CLIENT = Path(__file__).with_name("oxen_client.py")


def oxen_client(server, key: str, config_dir: Path, ops: list[dict]) -> list:
    """Run `ops` through oxen.RemoteRepo against `server`; one result per op."""
    if not OXEN_PYTHON.exists():
        pytest.fail(f"the oxenai client venv is missing ({OXEN_PYTHON}); `make venv` creates it")
    host = server.url.removeprefix("http://")
    out = subprocess.run(
        [str(OXEN_PYTHON), str(CLIENT), host, key, json.dumps(ops)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OXEN_CONFIG_DIR": str(config_dir)},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def http(server, key: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def assert_oxen_error(r: httpx.Response, status: int, param: str | None = None) -> dict:
    """Oxen's envelope: {"status": "error", "status_message", "error": {"type", "title", "detail"}}."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["status"] == "error" and body["status_message"], body
    assert {"type", "title", "detail"} <= set(body["error"]), body
    if param is not None:
        assert body["error"].get("param") == param, body
    return body["error"]


QA_CSV = "question,answer\n" + "".join(f"What is fact number {i}?,It is {i * 7}\n" for i in range(12))


def put_file(c: httpx.Client, repo: str, path: str, data: bytes, branch: str = "main") -> dict:
    """What RemoteRepo.upload sends (multipart files[], name, email, message), for tests that
    only need data in a repository."""
    directory, _, filename = path.rpartition("/")
    r = c.put(
        f"/api/repos/{repo}/file/{branch}/{directory}",
        files={"files[]": (filename, data)},
        data={"name": "Ada", "email": "ada@example.com", "message": f"add {path}"},
    )
    assert r.status_code == 200, r.text
    return r.json()["commit"]
