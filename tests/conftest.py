"""Shared fixtures: a real database (SQLite, and PostgreSQL when POLYTUNE_TEST_DATABASE_URL is
set), and a real polytune server on loopback started through its own CLI."""

from __future__ import annotations

import contextlib
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
# The suite is a CPU suite: on a GPU machine it must give the same results, so neither the tests
# nor the servers and workers they start see an accelerator (tests fake them by setting).
os.environ["CUDA_VISIBLE_DEVICES"] = ""
# The ~25 servers (and the apps made in process) the suite starts mostly never serve a model:
# their engine process starts on their first request, not with them (what warm start changes is
# tested on its own: tests/inference/test_process_backend.py).
os.environ.setdefault("POLYTUNE_INFERENCE_WARM_START", "false")

BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# The live API server runs twice: on one machine as installed (SQLite, local workers), and as
# scaled out (jobs on a Ray cluster; PostgreSQL when POLYTUNE_TEST_DATABASE_URL is set, as in CI).
SERVER_BACKENDS = ["sqlite", "postgresql" if PG_URL else "sqlite-ray"]


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


@pytest.fixture
def db(database_url):
    """A migrated database of each backend, for tests of the store and the scheduler."""
    from polytune.store.db import Database

    d = Database(database_url)
    d.migrate()
    yield d
    d.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """`polytune serve` in a subprocess, with its own data dir and database."""

    def __init__(self, tmp: Path, database_url: str, **env: str):
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
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
        # A free port can be taken by another test process between our probe and the server's
        # bind (tests run in parallel): then the server exits at once, and we try another.
        for _ in range(3):
            if self._start():
                return
        raise RuntimeError("the server found no free port three times")

    def _start(self) -> bool:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(BIN / "polytune"), "serve", "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.tmp / "server.log").read_text()
                if "address already in use" in log.lower().rsplit("started server process", 1)[-1]:
                    return False
                raise RuntimeError("server exited:\n" + log)
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not become healthy")

    def create_key(self, org: str) -> str:
        out = subprocess.run(
            [str(BIN / "polytune"), "keys", "create", "--org", org],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
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


# Ray on loopback only (by default Ray binds the machine's outward address), writing no auth token.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class RayCluster:
    """A real Ray head on loopback (`ray start --head --block`), CPU only, with `cpus` logical
    CPUs; stopped with its whole process group, leaving any other Ray on the machine alone."""

    def __init__(self, cpus: int = 4):
        import tempfile

        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.cpus = cpus
        # Short: Ray's unix sockets live under it (108 characters at most).
        self.temp_dir = tempfile.mkdtemp(prefix="pt-ray-", dir="/tmp")
        self.log = open(Path(self.temp_dir) / "head.log", "ab")
        self.env = {**os.environ, **RAY_ENV}
        self.proc = subprocess.Popen(
            [
                str(BIN / "ray"),
                "start",
                "--head",
                "--block",
                f"--port={self.port}",
                f"--num-cpus={cpus}",
                "--num-gpus=0",
                "--include-dashboard=false",
                "--disable-usage-stats",
                "--object-store-memory=200000000",
                f"--temp-dir={self.temp_dir}",
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_up()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("ray head exited:\n" + (Path(self.temp_dir) / "head.log").read_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    time.sleep(1.0)  # the GCS listens before the raylet has registered
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("ray head did not start")

    def stop(self) -> None:
        """SIGKILL every process of the cluster's session (Ray's workers get process groups of
        their own inside it): a graceful `ray stop` takes ~20 s and keeps nothing tests need."""
        import shutil
        import signal

        for pid in self._session_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _session_pids(self) -> list[int]:
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    # Field 6 of /proc/<pid>/stat is the session id; the command may hold spaces.
                    stat = (proc / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[3]) == self.proc.pid:
                        pids.append(int(proc.name))
                except (OSError, ValueError, IndexError):
                    continue
        return pids


@pytest.fixture(scope="session")
def ray_cluster():
    cluster = RayCluster()
    yield cluster
    cluster.stop()


@contextlib.contextmanager
def two_org_server(tmp: Path, url: str, drop, backend: str, **env: str):
    """A live server on `url` with a key for org-a and org-b; stopped, and its database dropped,
    after the block."""
    srv = LiveServer(tmp, url, **env)
    srv.backend = backend
    srv.key_a = srv.create_key("org-a")
    srv.key_b = srv.create_key("org-b")
    try:
        yield srv
    finally:
        srv.stop()
        drop()


@pytest.fixture(scope="session", params=SERVER_BACKENDS)
def server(request, tmp_path_factory):
    """The API server every API test talks to: on SQLite with local workers (one machine, nothing
    installed), and with its jobs on a Ray cluster (the scale-out setup) on PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"server-{request.param}")
    url, drop = make_database_url("sqlite" if request.param.startswith("sqlite") else "postgresql", tmp)
    env = {}
    if request.param != "sqlite":
        cluster = request.getfixturevalue("ray_cluster")
        env = {**RAY_ENV, "POLYTUNE_EXECUTOR": "ray", "POLYTUNE_RAY_ADDRESS": cluster.address}
    with two_org_server(tmp, url, drop, request.param, **env) as srv:
        srv.executor = env.get("POLYTUNE_EXECUTOR", "local")
        yield srv


@pytest.fixture
def client(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=server.key_a, max_retries=0, _strict_response_validation=True)


@pytest.fixture
def client_b(server):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=server.key_b, max_retries=0, _strict_response_validation=True)


# Fixtures that start processes: a test using one is marked `live` (not in `make test-fast`), and
# so is every test of a module that starts a server or a process itself.
_LIVE_FIXTURES = {"server", "ray_cluster", "limited_server", "tenancy_server"}
_LIVE_SOURCE = ("LiveServer(", "subprocess.")
_live_modules: dict[str, bool] = {}


def _starts_processes(path: str) -> bool:
    if path not in _live_modules:
        try:
            text = Path(path).read_text()
        except OSError:
            text = ""
        _live_modules[path] = any(mark in text for mark in _LIVE_SOURCE)
    return _live_modules[path]


# The worker's training code on real (tiny) models, in process: marked `trains`.
_TRAINING_TESTS = Path(__file__).parent / "training"


def pytest_collection_modifyitems(config, items):
    """A test marked `sqlite_only` trains a model for real through the live server. What the
    database does for it (jobs, events, checkpoints rows) the API tests already prove on both
    backends, so the training runs once, on the SQLite server, not again on the Ray one. A test
    marked `ray_only` is about the Ray executor: it runs on the Ray server only."""
    keep, drop = [], []
    for item in items:
        # `make test-fast` leaves out what needs a server process, a Ray cluster or a worker.
        if _LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())) or _starts_processes(str(item.fspath)):
            item.add_marker(pytest.mark.live)
        if _TRAINING_TESTS in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.trains)
        param = getattr(getattr(item, "callspec", None), "params", {}).get("server")
        skip = (param in SERVER_BACKENDS[1:] and item.get_closest_marker("sqlite_only")) or (
            param == "sqlite" and item.get_closest_marker("ray_only")
        )
        (drop if skip else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
