"""Fine-tuning jobs through the official openai SDK: create, list, retrieve, cancel, events,
and every bad input answered with a 400 that names the parameter, creating nothing."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl, wait_for


@pytest.fixture
def training_file(client):
    return client.files.create(file=("train.jsonl", io.BytesIO(chat_jsonl(12))), purpose="fine-tune").id


def _count_jobs(client) -> int:
    return len(client.fine_tuning.jobs.list(limit=1000).data)


def test_create_echoes_spec_and_seed(client, training_file):
    job = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=training_file, suffix="mine", metadata={"team": "a"}, seed=7
    )
    assert job.id.startswith("ftjob-") and job.object == "fine_tuning.job"
    assert job.status == "validating_files" and job.seed == 7 and job.metadata == {"team": "a"}
    assert job.training_file == training_file and job.model == "polytune-tiny"
    client.fine_tuning.jobs.cancel(job.id)


def test_seed_generated_when_absent(client, training_file):
    job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=training_file)
    assert isinstance(job.seed, int)
    assert client.fine_tuning.jobs.retrieve(job.id).seed == job.seed
    client.fine_tuning.jobs.cancel(job.id)


def test_list_paginates_and_filters_metadata(client, training_file):
    tag = f"run-{training_file[-6:]}"
    ids = [
        client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=training_file, metadata={"batch": tag, "i": str(i)}
        ).id
        for i in range(3)
    ]
    for j in ids:
        client.fine_tuning.jobs.cancel(j)
    page = client.fine_tuning.jobs.list(limit=2, metadata={"batch": tag})
    assert [j.id for j in page.data] == ids[::-1][:2] and page.has_more
    rest = client.fine_tuning.jobs.list(limit=2, after=page.data[-1].id, metadata={"batch": tag})
    assert [j.id for j in rest.data] == [ids[0]] and not rest.has_more
    one = client.fine_tuning.jobs.list(metadata={"batch": tag, "i": "1"})
    assert [j.id for j in one.data] == [ids[1]]
    assert (
        list(client.fine_tuning.jobs.list(limit=1, metadata={"batch": tag}))
        and len(list(client.fine_tuning.jobs.list(limit=1, metadata={"batch": tag}))) == 3
    )  # auto-pagination


def test_cancel_is_idempotent(client, training_file):
    job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=training_file)
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    again = client.fine_tuning.jobs.cancel(job.id)
    assert again.status == "cancelled" and again.finished_at is not None
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.resume(job.id)
    assert "only a paused job" in e.value.body["message"]
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert any("cancelled" in ev.message for ev in events)
    assert all(ev.object == "fine_tuning.job.event" for ev in events)


def test_bad_data_fails_job_with_line(client):
    rows = chat_jsonl(12).splitlines()
    rows[4] = b'{"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "x"}]}'
    fid = client.files.create(file=("t.jsonl", io.BytesIO(b"\n".join(rows))), purpose="fine-tune")
    assert fid.status == "error"
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(model="polytune-tiny", training_file=fid.id)
    assert e.value.body["param"] == "training_file" and "line 5" in e.value.body["message"]


BAD_BODIES = [
    ({"model": "no-such-model"}, "model"),
    ({"training_file": "file-doesnotexist"}, "training_file"),
    ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"n_epochs": -2}}, "hyperparameters.n_epochs"),
    ({"hyperparameters": {"learning_rate_multiplier": 0}}, "hyperparameters.learning_rate_multiplier"),
    ({"hyperparameters": {"learning_rate_multiplier": -1.5}}, "hyperparameters.learning_rate_multiplier"),
    ({"hyperparameters": {"batch_size": 0}}, "hyperparameters.batch_size"),
    (
        {"method": {"type": "supervised", "supervised": {"hyperparameters": {"batch_size": 0}}}},
        "method.supervised.hyperparameters.batch_size",
    ),
    ({"suffix": "x" * 65}, "suffix"),
    ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"method": {"type": "distillation"}}, "method.type"),
    ({"method": {"type": "reinforcement"}}, "method.reinforcement.grader"),
    ({"hyperparameters": {"n_epochs": "lots"}}, "hyperparameters.n_epochs"),
    # QLoRA (a polytune extension): no accelerator on the test servers, and an unknown scheme.
    (
        {"method": {"type": "supervised", "supervised": {"hyperparameters": {"quantization": "nf4"}}}},
        "method.supervised.hyperparameters.quantization",
    ),
    ({"hyperparameters": {"quantization": "int3"}}, "hyperparameters.quantization"),
    ({"hyperparameters": {"quantization": "nf4", "lora": False}}, "hyperparameters.quantization"),
]


@pytest.mark.parametrize("change,param", BAD_BODIES)
def test_bad_input_is_400_with_param_and_creates_nothing(client, training_file, change, param):
    body = {"model": "polytune-tiny", "training_file": training_file, **change}
    before = _count_jobs(client)
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/fine_tuning/jobs", body=body, cast_to=httpx.Response)
    err = e.value.body
    assert err["param"] == param, err
    assert err["message"]
    assert _count_jobs(client) == before


def test_qlora_without_an_accelerator_is_refused_saying_why(client, training_file):
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny",
            training_file=training_file,
            method={"type": "supervised", "supervised": {"hyperparameters": {"quantization": "nf4"}}},
        )
    assert e.value.body["code"] == "unsupported_hardware"
    assert "needs a CUDA accelerator" in e.value.body["message"]


def test_validation_file_equal_to_training_file(client, training_file):
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(
            model="polytune-tiny", training_file=training_file, validation_file=training_file
        )
    assert e.value.body["param"] == "validation_file"


def test_file_of_other_purpose_or_org_or_deleted(client, client_b, training_file):
    notes = client.files.create(file=("n.txt", io.BytesIO(b"hello")), purpose="assistants")
    theirs = client_b.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl())), purpose="fine-tune")
    gone = client.files.create(file=("g.jsonl", io.BytesIO(chat_jsonl())), purpose="fine-tune")
    client.files.delete(gone.id)
    for fid, word in ((notes.id, "purpose"), (theirs.id, "does not exist"), (gone.id, "does not exist")):
        with pytest.raises(openai.BadRequestError) as e:
            client.fine_tuning.jobs.create(model="polytune-tiny", training_file=fid)
        assert e.value.body["param"] == "training_file" and word in e.value.body["message"]


def test_malformed_json_and_wrong_content_type(server):
    h = {"Authorization": f"Bearer {server.key_a}"}
    r = httpx.post(
        f"{server.url}/v1/fine_tuning/jobs", content=b'{"model": ', headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(f"{server.url}/v1/fine_tuning/jobs", content=b"model=x", headers={**h, "Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_content_type"
    r = httpx.post(f"{server.url}/v1/fine_tuning/jobs", json={"model": "polytune-tiny"}, headers=h)
    assert r.status_code == 400 and r.json()["error"]["param"] == "training_file"


def test_missing_or_invalid_key(server):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(f"{server.url}/v1/fine_tuning/jobs", json={}, headers=headers)
        assert r.status_code == 401
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_other_orgs_job_is_404(client, client_b, training_file):
    job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=training_file)
    for call in (
        lambda: client_b.fine_tuning.jobs.retrieve(job.id),
        lambda: client_b.fine_tuning.jobs.cancel(job.id),
        lambda: client_b.fine_tuning.jobs.list_events(job.id),
        lambda: client_b.fine_tuning.jobs.checkpoints.list(job.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert job.id not in {j.id for j in client_b.fine_tuning.jobs.list().data}
    assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"


def test_validated_job_resolves_auto(client, training_file):
    job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=training_file)
    queued = wait_for(lambda: (j := client.fine_tuning.jobs.retrieve(job.id)).status != "validating_files" and j)
    client.fine_tuning.jobs.cancel(job.id) if queued.status in ("queued", "running") else None
    hp = queued.hyperparameters
    assert isinstance(hp.n_epochs, int) and isinstance(hp.batch_size, int)
    assert isinstance(hp.learning_rate_multiplier, float)
