"""A Tinker run's checkpoints download in one step: a training state with `tinker checkpoint
download` (the SDK's CLI, unchanged: it exports through a new run, sets a TTL, deletes the export
and finishes its session, all answered here) or with one signed-URL request for every file; sampler
weights as one archive from `GET /v1/models/{their path}/content`. Another organization: 404."""

from __future__ import annotations

import io
import subprocess
import tarfile
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import BIN
from tests.dialects.tinker.conftest import CLIENTS
from tests.dialects.tinker.test_sdk import datum

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def saved(service_a):
    """(run, its saved state's path, its sampler weights' path) after two training steps."""
    from tinker import types

    tc = service_a.create_lora_training_client(base_model="polytune-tiny", rank=4, seed=0).result()
    data = [datum(types, tc.get_tokenizer(), "Q: red?\nA:", " apple")]
    for _ in range(2):
        tc.forward_backward(data, "cross_entropy")
        tc.optim_step(types.AdamParams(learning_rate=1e-3)).result()
    return tc, tc.save_state("dl").result().path, tc.save_weights_for_sampler("dl").result().path


def _urls(server, key: str, path: str) -> httpx.Response:
    run_id, checkpoint = path.removeprefix("tinker://").split("/", 1)
    return httpx.get(
        f"{server.url}/api/v1/training_runs/{run_id}/checkpoints/{checkpoint}/external_weights_urls",
        headers={"X-API-Key": key},
        timeout=30,
    )


def test_the_tinker_cli_downloads_a_training_checkpoint(saved, tinker_server, tmp_path):
    import tinker

    _, path, _ = saved
    env = {**tinker_server.env, "TINKER_BASE_URL": tinker_server.url, "TINKER_API_KEY": tinker_server.key_a}
    env["TINKER_TELEMETRY"] = "0"
    # The SDK's own CLI, with its dependencies from .venv-clients after .venv's (conftest.py).
    code = f"import sys; sys.path.append({str(CLIENTS)!r}); from tinker.cli.__main__ import main; main()"
    out = subprocess.run(
        [str(BIN / "python"), "-c", code, "checkpoint", "download", path, "--output", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    folder = tmp_path / path.removeprefix("tinker://").replace("/", "_")
    assert {"adapter_model.safetensors", "adapter_config.json"} <= {p.name for p in folder.iterdir()}
    # The export it made is deleted, and the run it made ended with its session.
    rest = tinker.RestClient(base_url=tinker_server.url, api_key=tinker_server.key_a)
    runs = rest.list_training_runs(limit=100).result().training_runs
    export_runs = [r for r in runs if r.training_run_id != path.removeprefix("tinker://").split("/")[0]]
    for run in export_runs:
        assert not [
            c for c in rest.list_checkpoints(run.training_run_id).result().checkpoints if "download" in c.checkpoint_id
        ]
    newest = httpx.get(
        f"{tinker_server.url}/v1/fine_tuning/jobs/{runs[0].training_run_id}",
        headers={"Authorization": f"Bearer {tinker_server.key_a}"},
    ).json()
    assert newest["status"] == "succeeded", newest


def test_every_file_of_a_training_state_in_one_request(saved, tinker_server, tmp_path):
    import torch

    _, path, _ = saved
    response = _urls(tinker_server, tinker_server.key_a, path)
    assert response.status_code == 200, response.text
    urls = response.json()["urls"]
    assert {"adapter_model.safetensors", "adapter_config.json", "optimizer.pt"} <= set(urls)
    got = httpx.get(urls["optimizer.pt"], timeout=30)  # no key: the signature is the credential
    assert got.status_code == 200
    (tmp_path / "optimizer.pt").write_bytes(got.content)
    assert torch.load(tmp_path / "optimizer.pt")["state"], "AdamW's moments after two steps"
    # Another organization: a 404, like every other of its resources.
    assert _urls(tinker_server, tinker_server.key_b, path).status_code == 404


def test_sampler_weights_download_as_one_archive(saved, tinker_server):
    _, _, sampler_path = saved
    url = f"{tinker_server.url}/v1/models/{quote(sampler_path, safe='')}/content"
    got = httpx.get(url, headers={"Authorization": f"Bearer {tinker_server.key_a}"}, timeout=60)
    assert got.status_code == 200, got.text
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        names = {name.rsplit("/", 1)[-1] for name in tar.getnames()}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= names
    assert _urls(tinker_server, tinker_server.key_a, sampler_path).status_code == 200
    other = httpx.get(url, headers={"Authorization": f"Bearer {tinker_server.key_b}"}, timeout=60)
    assert other.status_code == 404


def test_checkpoint_ttl_and_delete(saved, tinker_server):
    tc, _, sampler_path = saved
    doomed = tc.save_state("doomed").result().path
    run_id, checkpoint = doomed.removeprefix("tinker://").split("/", 1)
    base = f"{tinker_server.url}/api/v1/training_runs/{run_id}/checkpoints"
    a, b = {"X-API-Key": tinker_server.key_a}, {"X-API-Key": tinker_server.key_b}
    assert httpx.put(f"{base}/{checkpoint}/ttl", json={"ttl_seconds": 60}, headers=a).status_code == 200
    assert httpx.put(f"{base}/{checkpoint}/ttl", json={"ttl_seconds": -1}, headers=a).status_code == 400
    assert httpx.delete(f"{base}/{checkpoint}", headers=b).status_code == 404
    assert httpx.delete(f"{base}/{checkpoint}", headers=a).status_code == 200
    assert httpx.delete(f"{base}/{checkpoint}", headers=a).status_code == 404
    sampler = sampler_path.removeprefix("tinker://").split("/", 1)[1]
    refused = httpx.delete(f"{base}/{sampler}", headers=a)
    assert refused.status_code == 400 and "checkpoint_id" in refused.text
