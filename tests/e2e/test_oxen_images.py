"""An Oxen.ai user's image path against a live server: push images and a table of image paths
and captions (what `RemoteRepo.upload` sends), run an image_generation fine-tune, watch its
samples land in the repository while it trains, and read the LoRA back from the repository."""

from __future__ import annotations

import uuid

import pytest

from tests.dialects.oxen.support import http, put_file
from tests.helpers import wait_for
from tests.training.image_support import SHAPES, one_colour_png

pytestmark = pytest.mark.slow
DONE = ("completed", "errored", "stopped")
STEPS, SAMPLE_EVERY = 12, 6


def test_push_images_fine_tune_and_read_samples_and_weights(server, client):
    if server.backend != "sqlite":
        pytest.skip("training end to end runs on the sqlite backend")
    repo = f"ada/shapes-{uuid.uuid4().hex[:8]}"
    ns, short = repo.split("/")
    with http(server, server.key_a) as c:
        assert c.post("/api/repos", json={"namespace": ns, "name": short}).status_code == 200
        rows = ["file,text"]
        for shape in SHAPES:
            put_file(c, repo, f"pics/red-{shape}.png", one_colour_png("red", shape))
            rows.append(f"pics/red-{shape}.png,a red {shape}")
        put_file(c, repo, "train.csv", ("\n".join(rows) + "\n").encode())

        ft = c.post(
            f"/api/repos/{repo}/fine_tunes",
            json={
                "resource": "main/train.csv",
                "base_model": "polytune-tiny-diffusion",
                "script_type": "image_generation",
                "training_params": {
                    "image_column": "file",
                    "caption_column": "text",
                    "steps": STEPS,
                    "batch_size": 2,
                    "learning_rate": 1e-3,
                    "timestep_type": "linear",
                    "sample_every": SAMPLE_EVERY,
                    "samples": [{"prompt": "a red square"}, {"prompt": "a red circle", "seed": 9}],
                },
                "oxen_model_path": "loras/red",
            },
        ).json()["fine_tune"]
        assert ft["status"] == "created", ft
        assert c.post(f"/api/repos/{repo}/fine_tunes/{ft['id']}/actions/run").status_code == 200
        ft = wait_for(
            lambda: (
                (j := c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"])["status"] in DONE and j
            ),
            timeout=300,
            interval=0.5,
        )
        assert ft["status"] == "completed", ft["error"]
        assert ft["trained_steps"] == STEPS and ft["output_resource"]["path"] == "loras/red"

        # Samples: at steps 6 and 12, two each, in the repository beside the weights.
        for step in (SAMPLE_EVERY, STEPS):
            for i in range(2):
                r = c.get(f"/api/repos/{repo}/file/main/loras/red/samples/step-{step}/{i}.png")
                assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), (step, i)
        assert c.get(f"/api/repos/{repo}/file/main/loras/red/samples/step-18/0.png").status_code == 404

        # The checkpoints are the sampling steps; the final LoRA is in diffusers' format.
        ckpts = c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}/checkpoints").json()
        assert [ck["step"] for ck in ckpts["checkpoints"]] == [SAMPLE_EVERY, STEPS]
        assert all(ck["size_bytes"] > 0 and ck["metrics"]["loss"] > 0 for ck in ckpts["checkpoints"])
        weights = c.get(f"/api/repos/{repo}/file/main/loras/red/pytorch_lora_weights.safetensors")
        assert weights.status_code == 200 and len(weights.content) > 1000

    # The same job through the openai SDK: its events announce the samples.
    events = [e for e in client.fine_tuning.jobs.list_events(ft["id"], limit=100).data]
    sample_events = sorted(
        (e.data["step"], [s["path"] for s in e.data["samples"]])
        for e in events
        if e.data and "samples" in e.data and "step" in e.data
    )
    assert sample_events == [
        (step, [f"loras/red/samples/step-{step}/{i}.png" for i in range(2)]) for step in (SAMPLE_EVERY, STEPS)
    ]
    job = client.fine_tuning.jobs.retrieve(ft["id"])
    assert job.status == "succeeded" and job.fine_tuned_model

    # Generate with the fine-tuned model and its base through OpenAI's images API.
    import base64
    import io

    import httpx
    import numpy as np
    from PIL import Image

    def pixels(b64: str) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB"), dtype=np.int16)

    tuned = client.images.generate(
        model=job.fine_tuned_model, prompt="a red square", n=2, response_format="b64_json", extra_body={"seed": 4}
    )
    base = client.images.generate(
        model="polytune-tiny-diffusion", prompt="a red square", n=2, response_format="b64_json", extra_body={"seed": 4}
    )
    assert len(tuned.data) == 2 and all(pixels(d.b64_json).shape == (32, 32, 3) for d in tuned.data)
    again = client.images.generate(
        model=job.fine_tuned_model, prompt="a red square", n=2, response_format="b64_json", extra_body={"seed": 4}
    )
    assert [d.b64_json for d in again.data] == [d.b64_json for d in tuned.data]  # same seed, same images
    assert np.abs(pixels(tuned.data[0].b64_json) - pixels(base.data[0].b64_json)).max() > 0  # the LoRA acts

    by_url = client.images.generate(model=job.fine_tuned_model, prompt="a red circle", size="48x48")
    (item,) = by_url.data
    png = httpx.get(item.url, timeout=30)  # no key: the URL is the credential
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (48, 48)


def test_a_unet_model_fine_tunes_and_serves_the_same_way(server, client):
    """polytune-tiny-unet (Stable Diffusion family) through the same path: samples and the LoRA
    in the repository, the fine-tuned model served by OpenAI's images API."""
    if server.backend != "sqlite":
        pytest.skip("training end to end runs on the sqlite backend")
    import base64

    repo = f"ada/unet-{uuid.uuid4().hex[:8]}"
    ns, short = repo.split("/")
    with http(server, server.key_a) as c:
        assert c.post("/api/repos", json={"namespace": ns, "name": short}).status_code == 200
        rows = ["image,caption"]
        for shape in SHAPES:
            put_file(c, repo, f"pics/{shape}.png", one_colour_png("blue", shape))
            rows.append(f"pics/{shape}.png,a blue {shape}")
        put_file(c, repo, "train.csv", ("\n".join(rows) + "\n").encode())
        ft = c.post(
            f"/api/repos/{repo}/fine_tunes",
            json={
                "resource": "main/train.csv",
                "base_model": "polytune-tiny-unet",
                "script_type": "image_generation",
                "training_params": {
                    "steps": 6,
                    "batch_size": 2,
                    "learning_rate": 3e-3,
                    "timestep_type": "weighted",
                    "sample_every": 3,
                    "samples": 1,
                },
            },
        ).json()["fine_tune"]
        assert c.post(f"/api/repos/{repo}/fine_tunes/{ft['id']}/actions/run").status_code == 200
        ft = wait_for(
            lambda: (
                (j := c.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"])["status"] in DONE and j
            ),
            timeout=300,
            interval=0.5,
        )
        assert ft["status"] == "completed", ft["error"]
        path = ft["output_resource"]["path"]
        for step in (3, 6):
            r = c.get(f"/api/repos/{repo}/file/main/{path}/samples/step-{step}/0.png")
            assert r.status_code == 200 and r.content.startswith(b"\x89PNG"), step
        weights = c.get(f"/api/repos/{repo}/file/main/{path}/pytorch_lora_weights.safetensors")
        assert weights.status_code == 200

    started = next(
        e
        for e in client.fine_tuning.jobs.list_events(ft["id"], limit=100).data
        if e.message.startswith("Training started")
    )
    assert (started.data["family"], started.data["objective"]) == ("UNet", "epsilon")
    job = client.fine_tuning.jobs.retrieve(ft["id"])
    tuned, base = (
        client.images.generate(model=m, prompt="a blue dot", response_format="b64_json", extra_body={"seed": 2})
        .data[0]
        .b64_json
        for m in (job.fine_tuned_model, "polytune-tiny-unet")
    )
    assert base64.b64decode(tuned).startswith(b"\x89PNG") and tuned != base  # the LoRA acts

    # Its download (docs/export.md) is the LoRA in diffusers' format, the bytes the repository holds;
    # an image model has no merged or GGUF form.
    import io
    import tarfile

    import httpx

    url, auth = f"{server.url}/v1/models/{job.fine_tuned_model}/content", {"Authorization": f"Bearer {server.key_a}"}
    adapter = httpx.get(url, headers=auth, timeout=120)
    assert adapter.status_code == 200, adapter.text
    with tarfile.open(fileobj=io.BytesIO(adapter.content)) as tar:
        assert tar.extractfile("pytorch_lora_weights.safetensors").read() == weights.content
    for fmt in ("merged", "gguf"):
        refused = httpx.get(url, params={"format": fmt}, headers=auth, timeout=60)
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "format", refused.text
