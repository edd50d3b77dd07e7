"""Per-organization quotas (the tenancy server sets them low: 2 unfinished jobs, 8 MiB stored):
beyond one, a request is refused in its dialect's own error shape, naming the quota's setting,
and creates nothing; with room made, the same request succeeds."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl
from tests.tenancy.conftest import openai_client

MIB = 1024 * 1024


def test_unfinished_jobs_quota_is_a_429_in_openai_and_seekr_shapes(tenancy_server):
    client = openai_client(tenancy_server, "org-jobs")
    file = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id
    create = lambda: (
        client.fine_tuning.jobs.create(model="polytune-tiny", training_file=file, hyperparameters={"n_epochs": 1}).id
    )
    jobs = [create(), create()]
    try:
        with pytest.raises(openai.RateLimitError) as refused:
            create()
        assert refused.value.status_code == 429
        assert refused.value.code == "job_quota_exceeded"
        assert "max_unfinished_jobs_per_org" in refused.value.message
        assert refused.value.response.headers["x-should-retry"] == "false"  # waiting frees nothing

        seekr = httpx.post(
            f"{tenancy_server.url}/v1/flow/fine-tune",
            headers={"Authorization": client.api_key},
            json={
                "training_config": {"training_files": [file], "model": "polytune-tiny", "n_epochs": 1},
                "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
            },
        )
        assert seekr.status_code == 429
        assert list(seekr.json()) == ["detail"] and "max_unfinished_jobs_per_org" in seekr.json()["detail"]
        assert len(client.fine_tuning.jobs.list(limit=100).data) == 2

        client.fine_tuning.jobs.cancel(jobs.pop())
        jobs.append(create())  # a finished job makes room
    finally:
        for job in jobs:
            client.fine_tuning.jobs.cancel(job)


def test_storage_quota_is_a_413_in_openai_and_seekr_shapes(tenancy_server):
    client = openai_client(tenancy_server, "org-storage")
    kept = client.files.create(file=("five.bin", io.BytesIO(b"x" * 5 * MIB)), purpose="user_data")
    blobs = Path(tenancy_server.env["POLYTUNE_DATA_DIR"]) / "blobs" / "files"
    stored = sorted(blobs.iterdir())

    with pytest.raises(openai.APIStatusError) as refused:
        client.files.create(file=("four.bin", io.BytesIO(b"y" * 4 * MIB)), purpose="user_data")
    assert refused.value.status_code == 413 and refused.value.code == "storage_quota_exceeded"
    assert refused.value.body["param"] == "file" and "max_storage_bytes_per_org" in refused.value.message

    with pytest.raises(openai.APIStatusError) as refused:  # the Uploads API, at the declared size
        client.uploads.create(bytes=4 * MIB, filename="four.bin", purpose="user_data", mime_type="text/plain")
    assert refused.value.status_code == 413 and refused.value.body["param"] == "bytes"

    seekr = httpx.put(
        f"{tenancy_server.url}/v1/flow/files",
        headers={"Authorization": client.api_key},
        files={"files": ("four.jsonl", b"z" * 4 * MIB)},
        data={"purpose": "fine-tune"},
    )
    assert seekr.status_code == 413
    assert list(seekr.json()) == ["detail"] and "max_storage_bytes_per_org" in seekr.json()["detail"]

    assert [f.id for f in client.files.list().data] == [kept.id]  # nothing of the refused ones kept
    assert sorted(blobs.iterdir()) == stored
    client.files.delete(kept.id)
    again = client.files.create(file=("four.bin", io.BytesIO(b"y" * 4 * MIB)), purpose="user_data")
    client.files.delete(again.id)
