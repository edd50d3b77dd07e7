"""Blob storage on S3 (`s3://` through s3fs), end to end against an S3-compatible server the test
starts itself (moto's standalone server, on loopback): a job whose checkpoints live there is
paused, resumed from the checkpoint stored there, and ends where an uninterrupted run ends; every
checkpoint is stored once (its downloadable .tar is the stored folder, archived as it streams)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile

import httpx
import openai
import pytest
from safetensors.torch import load

from tests.conftest import LiveServer, free_port
from tests.e2e.test_lifecycle import _at_step, _client, _create, _done, _messages, _row, _upload, _wait, _status
from tests.helpers import wait_for

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")
pytestmark = pytest.mark.slow
BUCKET = "polytune-blobs"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """moto's S3 server on 127.0.0.1 and the environment that points s3fs (botocore) at it."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_for(up, 60)
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POLYTUNE_STORAGE_URL": f"s3://{BUCKET}/store",
    }
    yield env
    proc.terminate()
    proc.wait(10)
    log.close()


def _s3fs(env):
    import s3fs

    return s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=env["AWS_ENDPOINT_URL"],
        skip_instance_cache=True,
    )


def test_a_job_on_s3_pauses_resumes_from_its_stored_checkpoint_and_stores_each_once(s3, tmp_path):
    # The server's data dir holds no blob: every file, checkpoint and model is in the bucket.
    server = LiveServer(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", POLYTUNE_RESUME_CHECKPOINT_STEPS="4", **s3)
    try:
        client = _client(server, server.create_key("s3"))
        reference = _done(client, _create(client, _upload(client)).id)
        assert reference.status == "succeeded", reference.error

        job = _create(client, _upload(client))
        _at_step(client, job.id, 10)
        client.fine_tuning.jobs.pause(job.id)
        _wait(client, job.id, lambda j: _status(j) == "paused", 120)
        step = _row(server, job.id)["resume_step"]
        fs = _s3fs(s3)
        resume = f"{BUCKET}/store/jobs/{job.id}/resume/step-{step}"
        assert fs.exists(f"{resume}/optimizer.pt") and fs.exists(f"{resume}/model.safetensors")
        client.fine_tuning.jobs.resume(job.id)
        done = _done(client, job.id)
        assert done.status == "succeeded", done.error
        messages = _messages(client, job.id)
        assert any(f"Resuming from the checkpoint at step {step}" in m for m in messages)
        assert any(m.startswith("Resume checkpoint at step") and "stored" in m for m in messages)

        # Each job's weights are in the bucket once: the last epoch's checkpoint is the final model
        # (one folder, two model ids), no tar copy under files/, no resume checkpoint left after success.
        stored = fs.find(f"{BUCKET}/store", detail=True)
        for j in (done, reference):
            weights = [
                k for k in stored if k.startswith(f"{BUCKET}/store/models/{j.id}/") and k.endswith("model.safetensors")
            ]
            assert len(weights) == 1, weights
            assert not [k for k in stored if k.startswith(f"{BUCKET}/store/jobs/{j.id}/resume/")]
        (ckpt,) = client.fine_tuning.jobs.checkpoints.list(done.id).data
        folder = f"{BUCKET}/store/models/{done.id}/ckpt-step-{ckpt.step_number}"
        size = stored[f"{folder}/model.safetensors"]["size"]
        assert not [k for k in stored if "/files/" in k and stored[k]["size"] >= size]

        # The resumed run ends where the uninterrupted one ended (their final weights, from S3).
        def final_weights(j):
            (key,) = [
                k for k in stored if k.startswith(f"{BUCKET}/store/models/{j.id}/") and k.endswith("model.safetensors")
            ]
            return load(fs.cat(key))

        ours, theirs = final_weights(done), final_weights(reference)
        assert max(float((ours[k] - theirs[k]).abs().max()) for k in ours) < 1e-5

        # ... and it downloads as a tar whose Content-Length is exact and whose files are the stored ones.
        (archive,) = ckpt.model_extra["result_files"]
        raw = httpx.get(
            f"{server.url}/v1/files/{archive}/content",
            headers={"Authorization": f"Bearer {client.api_key}"},
            timeout=60,
        )
        assert raw.status_code == 200 and int(raw.headers["content-length"]) == len(raw.content)
        with tarfile.open(fileobj=io.BytesIO(raw.content)) as tar:
            member = tar.extractfile(f"ckpt-step-{ckpt.step_number}/model.safetensors")
            assert member is not None and member.read() == fs.cat(f"{folder}/model.safetensors")

        # The fine-tuned model serves from the bucket.
        reply = client.chat.completions.create(
            model=done.fine_tuned_model, max_tokens=4, messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content is not None
    except openai.APIError:
        print((tmp_path / "server.log").read_text()[-5000:])
        raise
    finally:
        server.stop()
