"""An idle Tinker run saves its state and frees its model, and its next call loads it back:
training continues exactly where it was (same loss, same seq_id order)."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.conftest import BIN, LiveServer

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def idle_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tinker-idle")
    srv = LiveServer(tmp, f"sqlite:///{tmp}/polytune.db", POLYTUNE_PRIMITIVES_IDLE_SECONDS="2")
    srv.key = subprocess.run(
        [str(BIN / "polytune"), "keys", "create", "--org", "org-a", "--prefix", "tml-"],
        env=srv.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    try:
        yield srv
    finally:
        srv.stop()


def test_an_idle_run_is_released_and_comes_back(idle_server):
    tinker = pytest.importorskip("tinker", reason="`make venv` installs it into .venv-clients")
    from tinker import types

    service = tinker.ServiceClient(base_url=idle_server.url, api_key=idle_server.key)
    before = _jobs(idle_server)
    tc = service.create_lora_training_client(base_model="polytune-tiny", rank=4, seed=0).result()
    (job_id,) = _jobs(idle_server) - before
    data = [
        types.Datum(
            model_input=types.ModelInput.from_ints([5, 17, 42, 8]), loss_fn_inputs={"target_tokens": [17, 42, 8, 99]}
        )
    ]
    tc.forward_backward(data, "cross_entropy").result()
    tc.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    loss = tc.forward(data, "cross_entropy").result().metrics["loss:sum"]

    deadline = time.monotonic() + 60
    while not any("released" in m for m in _events(idle_server, job_id)):
        assert time.monotonic() < deadline, _events(idle_server, job_id)
        time.sleep(1)
    # The next call loads it back: the same weights, and the optimizer's moments too.
    assert tc.forward(data, "cross_entropy").result().metrics["loss:sum"] == pytest.approx(loss, abs=1e-5)
    assert any("loaded back" in m for m in _events(idle_server, job_id))
    tc.forward_backward(data, "cross_entropy").result()
    tc.optim_step(types.AdamParams(learning_rate=1e-2)).result()
    assert tc.forward(data, "cross_entropy").result().metrics["loss:sum"] < loss


def _jobs(srv) -> set[str]:
    r = httpx.get(f"{srv.url}/v1/fine_tuning/jobs", headers={"Authorization": f"Bearer {srv.key}"})
    return {j["id"] for j in r.json()["data"]}


def _events(srv, job_id: str) -> list[str]:
    r = httpx.get(
        f"{srv.url}/v1/fine_tuning/jobs/{job_id}/events",
        params={"limit": 100},
        headers={"Authorization": f"Bearer {srv.key}"},
    )
    return [e["message"] for e in r.json()["data"]]
