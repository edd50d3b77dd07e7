"""Oxen's fine-tune API over HTTP: create (held in `created`), run, get, lists, checkpoints;
every bad body is a 400 in Oxen's envelope that names the field and creates nothing; jobs are
the same jobs through the OpenAI routes."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.helpers import chat_jsonl, wait_for

from .support import QA_CSV, assert_oxen_error, http, put_file

TEXT = {"base_model": "polytune-tiny", "script_type": "text_generation"}


@pytest.fixture
def oxen(server):
    with http(server, server.key_a) as c:
        yield c


def _new_repo(c) -> str:
    name = f"ada/ft-{uuid.uuid4().hex[:8]}"
    ns, short = name.split("/")
    assert c.post("/api/repos", json={"namespace": ns, "name": short}).status_code == 200
    put_file(c, name, "data/qa.csv", QA_CSV.encode())
    put_file(c, name, "data/holes.csv", b"question,answer\nfine?,yes\nempty?,\n")
    return name


@pytest.fixture
def repo(oxen):
    return _new_repo(oxen)


@pytest.fixture(scope="module")
def shared_repo(server):
    """One repository for the tests that create nothing in it."""
    with http(server, server.key_a) as c:
        return _new_repo(c)


def _create(oxen, repo, **body):
    return oxen.post(f"/api/repos/{repo}/fine_tunes", json={"resource": "main/data/qa.csv", **TEXT, **body})


def test_created_waits_for_run_and_reads_through_openai(oxen, repo, client):
    r = _create(
        oxen,
        repo,
        training_params={"epochs": 2, "batch_size": 2, "use_lora": False, "logging_steps": 5},
        oxen_model_path="out/model",
    )
    assert r.status_code == 201
    body = r.json()
    assert body["status"] == "success" and body["status_message"] == "resource_created"
    ft = body["fine_tune"]
    assert ft["status"] == "created" and ft["base_model"] == "polytune-tiny"
    assert ft["resource"]["path"] == "main/data/qa.csv" and ft["resource"]["version"]
    assert ft["training_params"] == {
        "question_column": "question",
        "answer_column": "answer",
        "epochs": 2,
        "steps": None,
        "batch_size": 2,
        "learning_rate": None,
        "grad_accum": 1,
        "seq_length": None,
        "use_lora": False,
        "lora_rank": 16,
        "lora_alpha": 32,
        "logging_steps": 5,
    }
    assert ft["output_resource"] == {"repository": repo, "branch": "main", "path": "out/model"}

    time.sleep(1.0)  # several scheduler passes: a created job is left alone
    assert oxen.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"]["status"] == "created"
    progress = oxen.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}/train_status").json()["train_status"]
    assert progress["status"] == "created" and progress["trained_steps"] == 0

    # The same job through the openai SDK (strict): not queued yet, training on the converted table.
    job = client.fine_tuning.jobs.retrieve(ft["id"])
    assert job.status == "validating_files" and job.model == "polytune-tiny"
    assert client.files.retrieve(job.training_file).purpose == "fine-tune"
    rows = client.files.content(job.training_file).text.splitlines()
    assert len(rows) == 12 and '"content":"What is fact number 0?"' in rows[0] and '"It is 0"' in rows[0]

    run = oxen.post(f"/api/repos/{repo}/fine_tunes/{ft['id']}/actions/run")
    assert run.status_code == 200 and run.json()["fine_tune"]["status"] in ("tokenizing", "enqueued", "running")
    again = assert_oxen_error(oxen.post(f"/api/repos/{repo}/fine_tunes/{ft['id']}/actions/run"), 400)
    assert again["type"] == "invalid_job_state"
    assert client.fine_tuning.jobs.cancel(ft["id"]).status == "cancelled"
    assert oxen.get(f"/api/repos/{repo}/fine_tunes/{ft['id']}").json()["fine_tune"]["status"] == "stopped"


def _counts(client) -> tuple[int, int]:
    return len(client.fine_tuning.jobs.list(limit=1000).data), len(client.files.list().data)


@pytest.mark.parametrize(
    "body,param",
    [
        ({"resource": None}, "resource"),
        ({"base_model": None}, "base_model"),
        ({"base_model": "no-such-model"}, "base_model"),
        ({"script_type": "audio_generation"}, "script_type"),
        # an image job on a text model (and, below, the image parameters' own checks)
        (
            {
                "script_type": "image_generation",
                "training_params": {
                    "image_column": "img",
                    "caption_column": "cap",
                    "timestep_type": "weighted",
                    "samples": 2,
                    "sample_every": 100,
                },
            },
            "base_model",
        ),
        ({"training_params": {"image_column": "img"}}, "training_params.image_column"),
        (
            {"script_type": "image_generation", "training_params": {"timestep_type": "cosmic"}},
            "training_params.timestep_type",
        ),
        ({"script_type": "image_generation", "training_params": {"samples": -1}}, "training_params.samples"),
        ({"script_type": "image_generation", "training_params": {"sample_every": 0}}, "training_params.sample_every"),
        (
            {"script_type": "image_generation", "training_params": {"samples": [{"prompt": " "}]}},
            "training_params.samples[0].prompt",
        ),
        (
            {"script_type": "image_generation", "training_params": {"samples": [{"prompt": "a", "steps": 9}]}},
            "training_params.samples",
        ),
        ({"script_type": "image_generation", "training_params": {"epochs": 2}}, "training_params.epochs"),
        ({"training_params": {"epochs": 0}}, "training_params.epochs"),
        ({"training_params": {"epochs": "three"}}, "training_params.epochs"),
        ({"training_params": {"steps": 0}}, "training_params.steps"),
        ({"training_params": {"batch_size": -2}}, "training_params.batch_size"),
        ({"training_params": {"learning_rate": 0}}, "training_params.learning_rate"),
        ({"training_params": {"grad_accum": 0}}, "training_params.grad_accum"),
        ({"training_params": {"grad_accum": 2, "gradient_accumulation": 4}}, "training_params.grad_accum"),
        ({"training_params": {"seq_length": 0}}, "training_params.seq_length"),
        ({"training_params": {"lora_rank": 0}}, "training_params.lora_rank"),
        ({"training_params": {"use_lora": "yes"}}, "training_params.use_lora"),
        # QLoRA (a polytune extension): the test servers have no accelerator; an unknown scheme.
        ({"training_params": {"quantization": "nf4"}}, "training_params.quantization"),
        ({"training_params": {"quantization": "int3"}}, "training_params.quantization"),
        ({"training_params": {"neftune_noise_alpha": 5}}, "training_params.neftune_noise_alpha"),
        ({"training_params": {"question_column": "prompt"}}, "training_params.question_column"),
        ({"training_params": {"answer_column": ""}}, "training_params.answer_column"),
        ({"resource": "main/data/missing.csv"}, "resource"),
        ({"resource": "main"}, "resource"),
        ({"resource": "main/data/holes.csv"}, "resource"),
        ({"oxen_model_path": "../elsewhere"}, "oxen_model_path"),
        ({"is_public": "yes"}, "is_public"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_bodies_are_400_and_create_nothing(oxen, shared_repo, client, body, param):
    before = _counts(client)
    full = {"resource": "main/data/qa.csv", **TEXT, **body}
    err = assert_oxen_error(
        oxen.post(f"/api/repos/{shared_repo}/fine_tunes", json={k: v for k, v in full.items() if v is not None}),
        400,
        param,
    )
    assert err["detail"] and "hyperparameters." not in err["detail"]  # named as the user wrote it
    assert _counts(client) == before


def test_table_errors_name_the_rows(oxen, shared_repo):
    err = assert_oxen_error(_create(oxen, shared_repo, resource="main/data/holes.csv"), 400, "resource")
    assert "row 2: 'answer' is empty" in err["detail"]


def test_unknown_repository_or_job_is_404(oxen, repo, server, client):
    assert_oxen_error(oxen.post("/api/repos/ada/nowhere-xyz/fine_tunes", json={"resource": "main/a.csv", **TEXT}), 404)
    assert_oxen_error(oxen.get(f"/api/repos/{repo}/fine_tunes/ftjob-nothing"), 404)
    ft = _create(oxen, repo).json()["fine_tune"]["id"]
    with http(server, server.key_b) as b:  # another organization sees nothing of it
        assert_oxen_error(b.get(f"/api/repos/{repo}/fine_tunes/{ft}"), 404)
        assert ft not in [f["id"] for f in b.get("/api/users/ada/fine_tunes?page_size=1000").json()["fine_tunes"]]
    client.fine_tuning.jobs.cancel(ft)


def test_lists_per_repository_and_per_user(oxen, repo, client):
    other = repo + "-b"
    ns, short = other.split("/")
    oxen.post("/api/repos", json={"namespace": ns, "name": short})
    put_file(oxen, other, "qa.csv", QA_CSV.encode())
    first, second = (_create(oxen, repo).json()["fine_tune"]["id"] for _ in range(2))
    elsewhere = oxen.post(f"/api/repos/{other}/fine_tunes", json={"resource": "main/qa.csv", **TEXT}).json()
    elsewhere = elsewhere["fine_tune"]["id"]
    f = client.files.create(file=("t.jsonl", chat_jsonl(10)), purpose="fine-tune")
    openai_job = client.fine_tuning.jobs.create(model="polytune-tiny", training_file=f.id)

    page = oxen.get(f"/api/repos/{repo}/fine_tunes", params={"page_size": 1}).json()
    assert page["status"] == "success" and [j["id"] for j in page["fine_tunes"]] == [second]
    assert page["total_entries"] == 2 and page["total_pages"] == 2 and page["page_number"] == 1
    oldest = oxen.get(f"/api/repos/{repo}/fine_tunes", params={"sort": "oldest"}).json()["fine_tunes"]
    assert [j["id"] for j in oldest] == [first, second]

    # The user's list holds every job of the organization, whichever API created it.
    mine = {j["id"]: j for j in oxen.get("/api/users/ada/fine_tunes", params={"page_size": 1000}).json()["fine_tunes"]}
    assert {first, second, elsewhere, openai_job.id} <= set(mine)
    assert mine[elsewhere]["repository"] == other
    assert mine[openai_job.id]["resource"] == {"path": f.id, "version": None}
    assert mine[openai_job.id]["repository_id"] is None and mine[openai_job.id]["status"] in (
        "tokenizing",
        "enqueued",
        "running",
        "completed",
    )
    # An OpenAI job belongs to no repository.
    assert_oxen_error(oxen.get(f"/api/repos/{repo}/fine_tunes/{openai_job.id}"), 404)

    client.fine_tuning.jobs.cancel(first)
    stopped = oxen.get(f"/api/repos/{repo}/fine_tunes", params={"status": "stopped"}).json()["fine_tunes"]
    assert [j["id"] for j in stopped] == [first]
    for bad, param in (
        ({"status": "sleeping"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"page": 0}, "page"),
        ({"page_size": "many"}, "page_size"),
    ):
        assert_oxen_error(oxen.get(f"/api/repos/{repo}/fine_tunes", params=bad), 400, param)
    for job_id in (second, elsewhere, openai_job.id):
        client.fine_tuning.jobs.cancel(job_id)
    assert client.fine_tuning.jobs.cancel(first).status == "cancelled"  # cancel is idempotent
    wait_for(lambda: client.fine_tuning.jobs.retrieve(openai_job.id).status == "cancelled", timeout=30)
