"""A live server for the tenancy tests (quotas, fair validation, expiry, data at rest), with
small limits set through its environment so each one is reached in a few seconds."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, LiveServer, make_database_url

# Set low so the tests reach them quickly; every other test runs with the defaults.
TENANCY_ENV = {
    "POLYTUNE_VALIDATION_WORKERS": "2",
    "POLYTUNE_MAX_UNFINISHED_JOBS_PER_ORG": "2",
    "POLYTUNE_MAX_STORAGE_BYTES_PER_ORG": str(8 * 1024 * 1024),
    "POLYTUNE_EXPIRY_SWEEP_INTERVAL": "0.5",
    "POLYTUNE_SHUTDOWN_GRACE_SECONDS": "2",
}


def create_key(database_url: str, org: str) -> str:
    """An API key, made in the database as `polytune keys create` does (that command is tested
    in tests/cli), here without its seconds of start-up; also before the server starts."""
    from polytune.services.keys import KeyService
    from polytune.store.db import Database

    db = Database(database_url)
    try:
        db.migrate()
        return KeyService(db).create_key(org)[1]
    finally:
        db.dispose()


@pytest.fixture(scope="package", params=BACKENDS)
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

    return OpenAI(
        base_url=f"{server.url}/v1",
        api_key=create_key(server.env["POLYTUNE_DATABASE_URL"], org),
        max_retries=0,
        _strict_response_validation=True,
    )
