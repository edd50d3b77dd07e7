"""The official `tinker` SDK against a live polytune server, with keys made by
`polytune keys create --prefix tml-` (the SDK refuses keys without it).

tinker's dependencies that .venv lacks (zstandard, distro) come with it in .venv-clients
(requirements-clients.txt); this puts that folder at the end of sys.path, after .venv."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import BIN, ROOT, LiveServer

CLIENTS = ROOT / ".venv-clients"
if CLIENTS.is_dir() and str(CLIENTS) not in sys.path:
    sys.path.append(str(CLIENTS))
# The SDK's own diagnostics would be sent to the server it talks to; nothing there keeps them.
os.environ.setdefault("TINKER_TELEMETRY", "0")


@pytest.fixture(scope="module")
def tinker_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tinker-server")
    # A run holds a slot while its model is loaded: these tests keep several at once.
    srv = LiveServer(tmp, f"sqlite:///{tmp}/polytune.db", POLYTUNE_WORKER_SLOTS="8")

    def key(org: str) -> str:
        out = subprocess.run(
            [str(BIN / "polytune"), "keys", "create", "--org", org, "--prefix", "tml-"],
            env=srv.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    srv.key_a, srv.key_b = key("org-a"), key("org-b")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def service_a(tinker_server):
    tinker = pytest.importorskip("tinker", reason="`make venv` installs it into .venv-clients")
    return tinker.ServiceClient(base_url=tinker_server.url, api_key=tinker_server.key_a)


@pytest.fixture(scope="module")
def service_b(tinker_server):
    tinker = pytest.importorskip("tinker", reason="`make venv` installs it into .venv-clients")
    return tinker.ServiceClient(base_url=tinker_server.url, api_key=tinker_server.key_b)
