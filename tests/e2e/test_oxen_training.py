"""An Oxen.ai user's whole path against a live server: push a table with the `oxenai` client,
fine-tune over HTTP as Oxen's docs show, and read the fine-tuned weights back from the
repository — with the client, over HTTP, and loaded by peft onto the base model."""

from __future__ import annotations

import io
import tarfile
import uuid

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.dialects.oxen.support import QA_CSV, http, oxen_client
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
DONE = ("completed", "errored", "stopped")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def test_push_fine_tune_and_read_the_weights_back(server, client, tmp_path):
    repo = f"ada/facts-{uuid.uuid4().hex[:8]}"
    rows = [line.split(",") for line in QA_CSV.splitlines()[1:]]
    pq.write_table(
        pa.table({"prompt": [q for q, _ in rows], "reply": [a for _, a in rows]}), tmp_path / "facts.parquet"
    )
    pushed = oxen_client(
        server,
        server.key_a,
        tmp_path / "oxen",
        [
            {"op": "create", "repo": repo},
            {"op": "upload", "repo": repo, "src": str(tmp_path / "facts.parquet"), "dst_dir": "data"},
        ],
    )
    assert pushed == [None, None]

    with http(server, server.key_a) as c:
        # use_lora left out: Oxen's default is LoRA. `steps` decides the length of training.
        ft = c.post(
            f"/api/repos/{repo}/fine_tunes",
            json={
                "resource": "main/data/facts.parquet",
                "base_model": "polytune-tiny",
                "script_type": "text_generation",
                "training_params": {
                    "question_column": "prompt",
                    "answer_column": "reply",
                    "steps": 3,
                    "batch_size": 4,
                    "lora_rank": 8,
                    "lora_alpha": 16,
                },
                "oxen_model_path": "models/facts",
            },
        ).json()["fine_tune"]
        assert ft["status"] == "created"
        assert c.post(f"/api/repos/{repo}/fine_tunes/{ft['id']}/actions/run").status_code == 200
        ft = wait_for(
            lambda: (
                (j := c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"])["status"] in DONE and j
            ),
            timeout=300,
            interval=0.5,
        )
        assert ft["status"] == "completed", ft["error"]
        assert ft["trained_steps"] == 3 and ft["total_token_count"] > 0
        assert ft["training_params"]["steps"] == 3 and ft["training_params"]["use_lora"] is True
        assert ft["output_resource"] == {"repository": repo, "branch": "main", "path": "models/facts"}
        progress = c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}/train_status").json()["train_status"]
        assert progress["status"] == "completed" and progress["progress"] == 1.0

        # 12 rows, batch 4: the 3 steps are one epoch, checkpointed at its end.
        ckpts = c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}/checkpoints").json()
        assert ckpts["fine_tune_id"] == ft["id"] and ckpts["branch"] == "main" and ckpts["total_checkpoints"] == 1
        (ck,) = ckpts["checkpoints"]
        assert ck["step"] == 3 and ck["path"] == "models/facts/checkpoints/step-3"
        assert ck["size_bytes"] > 0 and ck["metrics"]["loss"] > 0
        assert c.get(f"/api/repos/{repo}/file/main/{ck['path']}/adapter_config.json").json()["r"] == 8

        # The published weights are the job's fine-tuned adapter, byte for byte: the one the
        # model download gives (the store may hold it under its last checkpoint's key).
        model_id = client.fine_tuning.jobs.retrieve(ft["id"]).fine_tuned_model
        r = httpx.get(
            f"{server.url}/v1/models/{model_id}/content",
            params={"format": "adapter"},
            headers={"Authorization": f"Bearer {server.key_a}"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
            stored = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
        adapter_dir = tmp_path / "adapter"
        adapter_dir.mkdir()
        for name in ADAPTER_FILES:
            r = c.get(f"/api/repos/{repo}/file/main/models/facts/{name}")
            assert r.status_code == 200 and r.content == stored[name], name
            (adapter_dir / name).write_bytes(r.content)
        assert c.get(f"/api/repos/{repo}/file/main/models/facts/adapter_config.json").json()["lora_alpha"] == 16

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(server.tmp / "data" / "models" / "polytune-tiny")
    tuned = PeftModel.from_pretrained(base, adapter_dir)
    assert any("lora_A" in name for name, _ in tuned.named_parameters())

    got = oxen_client(
        server,
        server.key_a,
        tmp_path / "oxen",
        [{"op": "get_file", "repo": repo, "path": "models/facts/adapter_model.safetensors"}],
    )
    assert got[0]["bytes"] == len(stored["adapter_model.safetensors"])

    # The same job through the openai SDK: finished, with a servable model.
    job = client.fine_tuning.jobs.retrieve(ft["id"])
    assert job.status == "succeeded" and job.fine_tuned_model == ft["fine_tuned_model"]
    assert job.fine_tuned_model in {m.id for m in client.models.list().data}
