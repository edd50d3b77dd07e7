"""Validation is shared fairly: one organization's big files do not hold another organization's
small job in `validating_files` (one thread validated everybody's jobs, in order)."""

from __future__ import annotations

import io

import pytest

from tests.conftest import BACKENDS, LiveServer, make_database_url
from tests.helpers import chat_jsonl, wait_for
from tests.tenancy.conftest import TENANCY_ENV, openai_client


@pytest.fixture(scope="module", params=BACKENDS)
def roomy_server(request, tmp_path_factory):
    """The tenancy settings with room for a file big enough to take a second or more to count
    (data/pretokens.py counts ~45 MB/s on one idle core; the shared server's quota is 8 MB)."""
    tmp = tmp_path_factory.mktemp(f"fairness-{request.param}")
    url, drop = make_database_url(request.param, tmp)
    env = {**TENANCY_ENV, "POLYTUNE_MAX_STORAGE_BYTES_PER_ORG": str(256 * 1024 * 1024)}
    srv = LiveServer(tmp, url, **env)
    yield srv
    srv.stop()
    drop()


def test_small_job_is_not_held_behind_another_orgs_big_files(roomy_server):
    big_org, small_org = openai_client(roomy_server, "org-big"), openai_client(roomy_server, "org-small")
    # ~45 MB: a second or more of counting per job, where the small file takes milliseconds.
    big = big_org.files.create(file=("big.jsonl", io.BytesIO(chat_jsonl(300_000))), purpose="fine-tune")
    small = small_org.files.create(file=("small.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    big_jobs = [big_org.fine_tuning.jobs.create(model="polytune-tiny", training_file=big.id) for _ in range(2)]
    small_job = small_org.fine_tuning.jobs.create(model="polytune-tiny", training_file=small.id)
    try:
        done = wait_for(
            lambda: (j := small_org.fine_tuning.jobs.retrieve(small_job.id)).status != "validating_files" and j,
            timeout=120,
            interval=0.1,
        )
        statuses = [big_org.fine_tuning.jobs.retrieve(j.id).status for j in big_jobs]
        assert done.status in ("queued", "running"), done.error
        # One thread per organization at most: the big organization's second job waits for its
        # first (which may have finished by now on a fast machine); in one line for everybody,
        # both would have been validated before the small job.
        assert "validating_files" in statuses, statuses
    finally:
        for client, job in [(small_org, small_job), *((big_org, j) for j in big_jobs)]:
            client.fine_tuning.jobs.cancel(job.id)
