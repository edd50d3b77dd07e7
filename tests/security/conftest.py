"""One live server for the input-limit tests, with its limits set low so a test crosses them
with a few kilobytes, on each database backend (no Ray: nothing here depends on the executor)."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, make_database_url, two_org_server

BODY_LIMIT = 16 * 1024
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="session", params=BACKENDS)
def limited_server(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"limited-{request.param}")
    url, drop = make_database_url(request.param, tmp)
    with two_org_server(
        tmp,
        url,
        drop,
        request.param,
        POLYTUNE_MAX_BODY_BYTES=str(BODY_LIMIT),
        POLYTUNE_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
    ) as srv:
        yield srv


@pytest.fixture
def openai_a(limited_server):
    from openai import OpenAI

    return OpenAI(base_url=f"{limited_server.url}/v1", api_key=limited_server.key_a, max_retries=0)


@pytest.fixture
def openai_b(limited_server):
    from openai import OpenAI

    return OpenAI(base_url=f"{limited_server.url}/v1", api_key=limited_server.key_b, max_retries=0)
