"""An idle Tinker run saves its state and frees its model and its slot, and its next call loads it
back: training continues exactly where it was (same loss, same seq_id order). Its slot goes to
another run meanwhile; then its next call is refused, naming the setting, until one is free."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from tests.conftest import BIN, LiveServer
from tests.helpers import wait_for

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


def test_an_idle_run_gives_its_slot_back(idle_server):
    tinker = pytest.importorskip("tinker", reason="`make venv` installs it into .venv-clients")
    from tinker import types

    service = tinker.ServiceClient(base_url=idle_server.url, api_key=idle_server.key)
    data = [types.Datum(model_input=types.ModelInput.from_ints([5, 17]), loss_fn_inputs={"target_tokens": [17, 42]})]
    before = _jobs(idle_server)
    # The server has one slot (the default): the run of the test before gives it back when idle.
    first = wait_for(lambda: _created(tinker, service), timeout=60)
    (job_id,) = _jobs(idle_server) - before
    wait_for(lambda: any("slot given back" in m for m in _events(idle_server, job_id)), timeout=60)
    second = service.create_lora_training_client(base_model="polytune-tiny", rank=4, seed=0).result()
    second.forward(data, "cross_entropy").result()  # (a call: it is not idle)
    with pytest.raises(tinker.RequestFailedError) as refused:
        first.forward(data, "cross_entropy").result()
    assert "released while idle" in str(refused.value) and "POLYTUNE_WORKER_SLOTS" in str(refused.value)
    (second_job,) = _jobs(idle_server) - before - {job_id}
    r = httpx.post(
        f"{idle_server.url}/v1/fine_tuning/jobs/{second_job}/cancel",
        headers={"Authorization": f"Bearer {idle_server.key}"},
    )
    assert r.status_code == 200
    # Cancelling the second run frees the slot (within the sweep's second): the first comes back.
    wait_for(lambda: _forward(tinker, first, data), timeout=60, interval=0.5)


def _created(tinker, service):
    try:
        return service.create_lora_training_client(base_model="polytune-tiny", rank=4, seed=0).result()
    except tinker.RateLimitError:
        return None


def _forward(tinker, client, data) -> bool:
    try:
        return client.forward(data, "cross_entropy").result().metrics["loss:sum"] > 0
    except tinker.RequestFailedError:
        return False


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
