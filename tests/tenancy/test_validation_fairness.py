"""Validation is shared fairly: one organization's big files do not hold another organization's
small job in `validating_files` (one thread validated everybody's jobs, in order)."""

from __future__ import annotations

import io

from tests.helpers import chat_jsonl, wait_for
from tests.tenancy.conftest import openai_client


def test_small_job_is_not_held_behind_another_orgs_big_files(tenancy_server):
    big_org, small_org = openai_client(tenancy_server, "org-big"), openai_client(tenancy_server, "org-small")
    # ~3 MB each: seconds of tokenizing apiece, where the small file takes a fraction of one.
    big = big_org.files.create(file=("big.jsonl", io.BytesIO(chat_jsonl(20_000))), purpose="fine-tune")
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
