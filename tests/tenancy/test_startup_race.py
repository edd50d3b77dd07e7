"""A job created the moment the server reports healthy is validated like any other: the
server's start-up import of the tokenizer stack and the job's validation must not race (they
did: "ImportError: cannot import name 'AutoTokenizer' from 'transformers'")."""

from __future__ import annotations

import io

from tests.conftest import LiveServer
from tests.helpers import chat_jsonl, wait_for
from tests.tenancy.conftest import create_key


def test_job_created_right_after_health_is_validated(tmp_path):
    from openai import OpenAI

    url = f"sqlite:///{tmp_path / 'polytune.db'}"
    key = create_key(url, "org-race")
    # Once is enough: on the unfixed server this failed every time (the warm-up import takes
    # seconds; the job's validation starts within a scheduler pass of its creation).
    server = LiveServer(tmp_path, url)  # returns as soon as /health answers 200
    try:
        client = OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
        file = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=file.id)
        done = wait_for(
            lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status != "validating_files" and j,
            timeout=120,
            interval=0.05,
        )
        assert done.status in ("queued", "running", "succeeded"), done.error
        client.fine_tuning.jobs.cancel(job.id)
    finally:
        server.stop()
