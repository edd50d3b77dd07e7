"""Shared fixtures: a real database (SQLite, and PostgreSQL when POLYTUNE_TEST_DATABASE_URL is
set), and a real polytune server on loopback started through its own CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("POLYTUNE_TEST_DATABASE_URL")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def make_database_url(backend: str, tmp: Path) -> tuple[str, callable]:
    """A fresh, empty database of the given kind, and a function that removes it."""
    if backend == "sqlite":
        return f"sqlite:///{tmp / 'polytune.db'}", lambda: None
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return _pg_schema_url(PG_URL, schema), drop


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    url, drop = make_database_url(request.param, tmp_path)
    yield url
    drop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`polytune serve` in a subprocess, with its own data dir and database."""

    def __init__(self, tmp: Path, database_url: str, **env: str):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "POLYTUNE_DATA_DIR": str(tmp / "data"),
            "POLYTUNE_DATABASE_URL": database_url,
            "POLYTUNE_SCHEDULER_INTERVAL": "0.2",
            "POLYTUNE_CANCEL_GRACE_SECONDS": "3",
            "HF_HUB_OFFLINE": "1",
            # No network here: W&B runs log offline into the job's folder.
            "POLYTUNE_WANDB_MODE": "offline",
            **env,
        }
        self.log = open(tmp / "server.log", "ab")
        self.proc = subprocess.Popen([str(BIN / "polytune"), "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port), "--log-level", "warning"],
                                     env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + (tmp / "server.log").read_text())
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise RuntimeError("server did not become healthy")

    def create_key(self, org: str) -> str:
        out = subprocess.run([str(BIN / "polytune"), "keys", "create", "--org", org], env=self.env,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def kill(self) -> None:
        """SIGKILL: the server dies at once, leaving its workers' jobs behind."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    url, drop = make_database_url(request.param, tmp)
    srv = LiveServer(tmp, url)
    srv.backend = request.param
    srv.key_a = srv.create_key("org-a")
    srv.key_b = srv.create_key("org-b")
    yield srv
    srv.stop()
    drop()


@pytest.fixture
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=server.key_a, max_retries=0,
                  _strict_response_validation=True)


@pytest.fixture
def client_b(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=server.key_b, max_retries=0,
                  _strict_response_validation=True)


def pytest_collection_modifyitems(config, items):
    """A test marked `sqlite_only` trains a model for real through the live server. What the
    database does for it (jobs, events, checkpoints rows) the API tests already prove on both
    backends, so the training runs once, on the SQLite server, not again on PostgreSQL."""
    keep, drop = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("server")
        (drop if param == "postgresql" and item.get_closest_marker("sqlite_only") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
