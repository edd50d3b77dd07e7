"""A Tinker run holds a scheduler slot like any job, under its organization's quotas, through the
official SDK: with the one slot taken a second run is refused at once with an error naming the
setting, another organization's supervised job waits in the queue, and cancelling the run from
the OpenAI API frees the slot for it; an organization at its unfinished-jobs quota cannot create
a run. (Idle release gives the slot back: test_idle.py.)"""

from __future__ import annotations

import io
import subprocess
import time

import pytest

from tests.conftest import BIN, LiveServer
from tests.helpers import chat_jsonl, wait_for

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tinker-slots")
    srv = LiveServer(
        tmp, f"sqlite:///{tmp}/polytune.db", POLYTUNE_WORKER_SLOTS="1", POLYTUNE_MAX_UNFINISHED_JOBS_PER_ORG="2"
    )

    def key(org: str) -> str:
        args = [str(BIN / "polytune"), "keys", "create", "--org", org, "--prefix", "tml-"]
        return subprocess.run(args, env=srv.env, capture_output=True, text=True, check=True).stdout.split()[-1]

    srv.key_a, srv.key_b = key("org-a"), key("org-b")
    try:
        yield srv
    finally:
        srv.stop()


def _clients(srv, key: str):
    tinker = pytest.importorskip("tinker", reason="`make venv` installs it into .venv-clients")
    from openai import OpenAI

    return tinker, tinker.ServiceClient(base_url=srv.url, api_key=key), OpenAI(base_url=f"{srv.url}/v1", api_key=key)


def _supervised(openai) -> str:
    file = openai.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id
    return openai.fine_tuning.jobs.create(model="polytune-tiny", training_file=file, hyperparameters={"n_epochs": 1}).id


def _status(openai, job_id: str) -> str:
    return openai.fine_tuning.jobs.retrieve(job_id).status


def _run_job(openai, before: set[str]) -> str:
    (job_id,) = {j.id for j in openai.fine_tuning.jobs.list().data} - before
    return job_id


def test_a_run_holds_the_slot_until_it_is_cancelled(one_slot):
    tinker, service_a, openai_a = _clients(one_slot, one_slot.key_a)
    _, service_b, openai_b = _clients(one_slot, one_slot.key_b)
    before = {j.id for j in openai_a.fine_tuning.jobs.list().data}
    tc = service_a.create_lora_training_client(base_model="polytune-tiny", rank=4, seed=0).result()
    run_job = _run_job(openai_a, before)

    # The slot is taken: the SDK raises at once (429 with x-should-retry: false), naming the setting.
    with pytest.raises(tinker.RateLimitError) as refused:
        service_b.create_lora_training_client(base_model="polytune-tiny", rank=4).result()
    assert "No free accelerator" in str(refused.value) and "POLYTUNE_WORKER_SLOTS" in str(refused.value)
    # A run from a saved state too, through its future (the SDK retries a 429 on that route).
    state = tc.save_state("s").result().path
    with pytest.raises(tinker.RequestFailedError, match="No free accelerator.*POLYTUNE_WORKER_SLOTS"):
        service_a.create_training_client_from_state(state).result()

    # Another organization's supervised job waits for the slot...
    waiting = _supervised(openai_b)
    wait_for(lambda: _status(openai_b, waiting) == "queued", timeout=120)
    time.sleep(1.5)  # several scheduler passes (0.2 s apart)
    assert _status(openai_b, waiting) == "queued"
    # ...until the run is cancelled from the OpenAI API: its model and slot are freed.
    openai_a.fine_tuning.jobs.cancel(run_job)
    wait_for(lambda: _status(openai_b, waiting) in ("running", "succeeded"), timeout=120)
    openai_b.fine_tuning.jobs.cancel(waiting)


def test_an_organization_at_its_job_quota_cannot_create_a_run(one_slot):
    tinker, service_a, openai_a = _clients(one_slot, one_slot.key_a)
    queued = [_supervised(openai_a), _supervised(openai_a)]  # 2 unfinished: the quota
    with pytest.raises(tinker.RateLimitError) as refused:
        service_a.create_lora_training_client(base_model="polytune-tiny", rank=4).result()
    assert "max_unfinished_jobs_per_org" in str(refused.value) and "job_quota_exceeded" in str(refused.value)
    for job_id in queued:
        openai_a.fine_tuning.jobs.cancel(job_id)
