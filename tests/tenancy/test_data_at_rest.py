"""Data at rest is private: after a job has run, nothing in the data dir (database, blobs,
models, logs, the secret key) can be read, written or entered by any other local user."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from tests.helpers import chat_jsonl, wait_done
from tests.tenancy.conftest import openai_client


def test_data_dir_has_no_group_or_other_permissions(tenancy_server):
    client = openai_client(tenancy_server, "org-private")
    file = client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune")
    job = wait_done(
        client,
        client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=file.id, hyperparameters={"n_epochs": 1}
        ).id,
    )
    assert job.status == "succeeded", job.error

    root = Path(tenancy_server.env["POLYTUNE_DATA_DIR"])
    seen, open_to_others = [], []
    for folder, dirs, files in os.walk(root):
        for path in [Path(folder)] + [Path(folder) / n for n in dirs + files]:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            seen.append(path.relative_to(root).as_posix())
            if stat.S_IMODE(mode) & 0o077:
                open_to_others.append(f"{oct(stat.S_IMODE(mode))} {path}")
    assert open_to_others == []
    # What it walked holds what matters: the key, uploaded files, the trained model, the job's log (and, on SQLite, the database).
    assert "secret.key" in seen and f"logs/{job.id}.log" in seen
    assert any(p.startswith("blobs/files/") for p in seen) and any(
        p.startswith(f"blobs/models/{job.id}/") for p in seen
    )
    if tenancy_server.backend == "sqlite":
        assert "polytune.db" in seen
