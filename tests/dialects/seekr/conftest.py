"""The `seekrai` SDK, pointed at the live server's root as its README shows.

seekrai pins typer<0.13 (and httpx<0.28), which would downgrade the service's own packages, so
the Makefile installs it with --no-deps into .venv-clients (requirements-clients.txt); this
puts that folder at the end of sys.path, after everything of .venv.
"""

from __future__ import annotations

import sys

import pytest

from tests.conftest import ROOT
from tests.helpers import chat_jsonl

CLIENTS = ROOT / ".venv-clients"
if CLIENTS.is_dir() and str(CLIENTS) not in sys.path:
    sys.path.append(str(CLIENTS))


@pytest.fixture
def seekr(server):
    from seekrai import SeekrFlow

    return SeekrFlow(api_key=server.key_a, base_url=server.url)


@pytest.fixture
def seekr_b(server):
    from seekrai import SeekrFlow

    return SeekrFlow(api_key=server.key_b, base_url=server.url)


@pytest.fixture
def seekr_async(server):
    from seekrai import AsyncSeekrFlow

    return AsyncSeekrFlow(api_key=server.key_a, base_url=server.url)


@pytest.fixture
def headers(server) -> dict[str, str]:
    """What the SDK sends: the bare key, no 'Bearer'."""
    return {"Authorization": server.key_a}


@pytest.fixture
def train_file(seekr, tmp_path) -> str:
    """A 10-example chat file uploaded as org A's fine-tune data."""
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(10))
    return seekr.files.upload(path, purpose="fine-tune").id
