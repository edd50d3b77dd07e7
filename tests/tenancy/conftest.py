"""A live server for the tenancy tests (quotas, fair validation, expiry, data at rest), with
small limits set through its environment so each one is reached in a few seconds."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import BACKENDS, BIN, LiveServer, make_database_url

# Set low so the tests reach them quickly; every other test runs with the defaults.
TENANCY_ENV = {
    "POLYTUNE_VALIDATION_WORKERS": "2",
    "POLYTUNE_MAX_UNFINISHED_JOBS_PER_ORG": "2",
    "POLYTUNE_MAX_STORAGE_BYTES_PER_ORG": str(8 * 1024 * 1024),
    "POLYTUNE_EXPIRY_SWEEP_INTERVAL": "0.5",
}


def create_key(env: dict[str, str], org: str) -> str:
    """An API key made by the CLI, as an operator does (also before the server starts)."""
    out = subprocess.run([str(BIN / "polytune"), "keys", "create", "--org", org], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", params=BACKENDS)
def tenancy_server(request, tmp_path_factory):
    """The database is the default one, inside the data dir, on SQLite (what the data-at-rest
    test walks); on PostgreSQL a schema of its own."""
    tmp = tmp_path_factory.mktemp(f"tenancy-{request.param}")
    if request.param == "sqlite":
        (tmp / "data").mkdir()
        url, drop = f"sqlite:///{tmp / 'data' / 'polytune.db'}", (lambda: None)
    else:
        url, drop = make_database_url(request.param, tmp)
    srv = LiveServer(tmp, url, **TENANCY_ENV)
    srv.backend = request.param
    yield srv
    srv.stop()
    drop()


def openai_client(server, org: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{server.url}/v1", api_key=server.create_key(org), max_retries=0,
                  _strict_response_validation=True)
