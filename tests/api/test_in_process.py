"""The routers of every dialect, in process (see support.py): what `make test-fast` proves of the
API without starting a server. The live-server tests (tests/dialects/, tests/e2e/) prove the rest:
jobs that train, the SDKs over a real socket, Ray."""

from __future__ import annotations

import openai
import pytest

from tests.api.support import in_process
from tests.helpers import chat_jsonl

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_health_and_the_model_catalog(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        health = await api.http.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        models = [m.id async for m in api.openai().models.list()]
        assert {"polytune-tiny", "polytune-tiny-diffusion", "polytune-tiny-unet"} <= set(models)
        # No key: OpenAI's envelope, 401.
        with pytest.raises(openai.AuthenticationError):
            await api.openai("wrong").models.list()


async def test_openai_files_upload_read_list_delete_and_stay_in_their_org(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client, other = api.openai(), api.openai(api.key_b)
        data = chat_jsonl(12)
        f = await client.files.create(file=("train.jsonl", data), purpose="fine-tune")
        assert f.bytes == len(data) and f.filename == "train.jsonl"
        assert (await client.files.retrieve(f.id)).id == f.id
        assert (await client.files.content(f.id)).content == data
        assert f.id in [x.id async for x in client.files.list(purpose="fine-tune")]
        with pytest.raises(openai.NotFoundError):
            await other.files.retrieve(f.id)
        assert (await client.files.delete(f.id)).deleted
        with pytest.raises(openai.NotFoundError):
            await client.files.retrieve(f.id)


async def test_openai_jobs_are_created_checked_listed_and_cancelled(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        f = await client.files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")
        with pytest.raises(openai.BadRequestError) as bad:
            await client.fine_tuning.jobs.create(model="no-such-model", training_file=f.id)
        assert bad.value.status_code == 400 and bad.value.body["param"] == "model"
        with pytest.raises(openai.BadRequestError) as bad:
            await client.fine_tuning.jobs.create(
                model="polytune-tiny", training_file=f.id, hyperparameters={"n_epochs": "many"}
            )
        assert "n_epochs" in bad.value.body["param"]
        job = await client.fine_tuning.jobs.create(model="polytune-tiny", training_file=f.id, suffix="fast")
        # No scheduler in this process: the job waits for its files to be validated.
        assert job.status == "validating_files" and job.model == "polytune-tiny"
        assert job.id in [j.id async for j in client.fine_tuning.jobs.list()]
        assert (await client.fine_tuning.jobs.cancel(job.id)).status == "cancelled"
        with pytest.raises(openai.NotFoundError):
            await api.openai(api.key_b).fine_tuning.jobs.retrieve(job.id)


async def test_seekrflow_routes_answer_in_seekrflow_shapes(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        listed = await api.http.get("/v1/flow/files", headers=api.headers())
        assert listed.status_code == 200 and listed.json()["data"] == []
        missing = await api.http.get("/v1/flow/fine-tunes/ft-nope", headers=api.headers())
        # SeekrFlow's envelope: {"detail": message}, not OpenAI's {"error": {...}}.
        assert missing.status_code == 404 and isinstance(missing.json()["detail"], str)


async def test_oxen_routes_answer_in_oxen_shapes(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        missing = await api.http.get("/api/repos/org-a/nope", headers=api.headers())
        body = missing.json()
        assert missing.status_code == 404 and body["status"] == "error" and body["error"]["type"]
        made = await api.http.post("/api/repos", headers=api.headers(), json={"namespace": "org-a", "name": "data"})
        assert made.status_code == 200, made.text
        got = await api.http.get("/api/repos/org-a/data", headers=api.headers())
        assert got.status_code == 200 and got.json()["status"] == "success"


async def test_every_error_under_a_dialect_comes_back_in_that_dialects_envelope(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        # A path that does not exist: Seekr's {"detail"}, Oxen's envelope, OpenAI's elsewhere.
        seekr = await api.http.get("/v1/flow/no-such-thing", headers=api.headers())
        assert seekr.status_code == 404 and seekr.json() == {"detail": "Not Found"}
        oxen = await api.http.get("/api/repos/org-a/data/no-such-thing", headers=api.headers())
        assert oxen.status_code == 404 and oxen.json()["status"] == "error", oxen.text
        openai_404 = await api.http.get("/v1/no-such-thing", headers=api.headers())
        assert openai_404.status_code == 404 and openai_404.json()["error"]["code"] == "not_found"
        # A method a Seekr path does not have.
        wrong = await api.http.delete("/v1/flow/files", headers=api.headers())
        assert wrong.status_code == 405 and wrong.json() == {"detail": "Method Not Allowed"}
        # A server fault inside a Seekr route (its table gone): a 500 in Seekr's shape.
        engine = api.app.state.services.files.db.engine
        with engine.begin() as c:
            c.exec_driver_sql("DROP TABLE files" + (" CASCADE" if engine.dialect.name == "postgresql" else ""))
        fault = await api.http.get("/v1/flow/files", headers=api.headers())
        assert fault.status_code == 500 and fault.json() == {"detail": "Internal Server Error"}


async def test_serving_and_images_come_from_the_apps_services(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
        assert missing.value.body["param"] == "model"
        with pytest.raises(openai.BadRequestError) as text_model:
            await client.images.generate(model="polytune-tiny", prompt="a red square")
        assert text_model.value.body["param"] == "model"
        # Built once with the app, the same objects every request gets.
        services = api.app.state.services
        assert services.inference is not None and services.images is not None


async def test_every_openai_error_carries_a_code(tmp_path, database_url):
    """Clients branch on `code`: none may be null (a suffix too long, n_epochs 0, an unknown
    route, a bad key, a malformed body)."""
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        f = await client.files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")
        bodies = []
        for kwargs in ({"suffix": "x" * 100}, {"hyperparameters": {"n_epochs": 0}}):
            with pytest.raises(openai.BadRequestError) as bad:
                await client.fine_tuning.jobs.create(model="polytune-tiny", training_file=f.id, **kwargs)
            bodies.append(bad.value.body)
        for response in (
            await api.http.get("/v1/no-such-route", headers=api.headers()),
            await api.http.get("/v1/models"),
            await api.http.post("/v1/fine_tuning/jobs", headers=api.headers(), content=b"{not json"),
        ):
            assert response.status_code in (400, 401, 404), response.text
            bodies.append(response.json()["error"])
        assert all(isinstance(b["code"], str) and b["code"] for b in bodies), bodies
        assert bodies[0]["param"] == "suffix" and "n_epochs" in bodies[1]["param"]
