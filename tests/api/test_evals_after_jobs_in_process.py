"""polytune_eval on job create in the SeekrFlow and Oxen dialects, in process (nothing trains):
the field of their open object is read — the eval run is created with the job, queued, waiting
for it, and no "ignored keys" warning names it — and a bad eval is a 4xx in that dialect's
error shape naming the field, with no job created."""

from __future__ import annotations

import openai
import pytest
import sqlalchemy as sa

from polytune.store import tables as t
from tests.api.support import in_process
from tests.dialects.oxen.support import QA_CSV
from tests.helpers import chat_jsonl
from tests.helpers import EXACT_GRADER as EXACT, QA_SCHEMA as SCHEMA

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:The Evals API is deprecated:DeprecationWarning")]

TEMPLATE = {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}
SOURCE = {"type": "file_content", "content": [{"item": {"question": "capital of Zorbia?", "answer": "Quillon."}}]}


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _eval_and_request(api) -> tuple[str, dict]:
    ev = await api.openai().evals.create(
        data_source_config={"type": "custom", "item_schema": SCHEMA, "include_sample_schema": True},
        testing_criteria=[EXACT],
    )
    return ev.id, {
        "eval_id": ev.id,
        "data_source": {"type": "completions", "source": SOURCE, "input_messages": TEMPLATE},
    }


async def _runs_and_jobs(api, eval_id: str) -> tuple[list, int]:
    with api.app.state.services.eval_runs.db.session() as s:
        runs = list(s.scalars(sa.select(t.EvalRun).where(t.EvalRun.eval_id == eval_id)))
        jobs = s.scalar(sa.select(sa.func.count()).select_from(t.Job)) or 0
        return [(r.status, r.model, r.job_id, r.metadata_) for r in runs], jobs


async def _warnings(api, job_id: str) -> list[str]:
    events = [e async for e in api.openai().fine_tuning.jobs.list_events(job_id)]
    return [e.message for e in events if e.level == "warn"]


async def test_seekrflow_training_config_carries_polytune_eval(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        eval_id, after = await _eval_and_request(api)
        training = await api.openai().files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")

        def body(polytune_eval: dict) -> dict:
            config = {"training_files": [training.id], "model": "polytune-tiny", "n_epochs": 1}
            return {
                "training_config": {**config, "polytune_eval": polytune_eval},
                "infrastructure_config": {"accel_type": "A100", "n_accel": 1},
            }

        bad = await api.http.post("/v1/flow/fine-tunes", headers=api.headers(), json=body({**after, "eval_id": "e-x"}))
        # SeekrFlow's shape for a refused field: 422, HTTPValidationError, loc naming it.
        assert bad.status_code == 422, bad.text
        assert bad.json()["detail"][0]["loc"] == ["body", "training_config", "polytune_eval", "eval_id"]
        assert await _runs_and_jobs(api, eval_id) == ([], 0)

        made = await api.http.post("/v1/flow/fine-tunes", headers=api.headers(), json=body(after))
        assert made.status_code == 200, made.text
        job_id = made.json()["id"]
        runs, _ = await _runs_and_jobs(api, eval_id)
        assert runs == [("queued", "", job_id, {"fine_tuning_job_id": job_id})]
        assert not any("polytune_eval" in w for w in await _warnings(api, job_id))


async def test_oxen_training_params_carry_polytune_eval(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        eval_id, after = await _eval_and_request(api)
        h = api.headers()
        assert (
            await api.http.post("/api/repos", headers=h, json={"namespace": "org-a", "name": "qa"})
        ).status_code == 200
        put = await api.http.put(
            "/api/repos/org-a/qa/file/main/data",
            headers=h,
            files={"files[]": ("qa.csv", QA_CSV.encode())},
            data={"name": "Ada", "email": "ada@example.com", "message": "add"},
        )
        assert put.status_code == 200, put.text

        def body(polytune_eval: dict) -> dict:
            return {
                "resource": "main/data/qa.csv",
                "base_model": "polytune-tiny",
                "script_type": "text_generation",
                "training_params": {"epochs": 1, "polytune_eval": polytune_eval},
            }

        bad = await api.http.post("/api/repos/org-a/qa/fine_tunes", headers=h, json=body({**after, "eval_id": "e-x"}))
        assert bad.status_code == 400, bad.text
        error = bad.json()
        assert error["status"] == "error" and error["error"]["param"] == "training_params.polytune_eval.eval_id"
        missing = {"type": "template", "template": [{"role": "user", "content": "{{item.topic}}"}]}
        bad = await api.http.post(
            "/api/repos/org-a/qa/fine_tunes",
            headers=h,
            json=body({**after, "data_source": {**after["data_source"], "input_messages": missing}}),
        )
        assert bad.status_code == 400 and bad.json()["error"]["param"] == (
            "training_params.polytune_eval.data_source.input_messages.template[0].content"
        )
        assert await _runs_and_jobs(api, eval_id) == ([], 0)

        made = await api.http.post("/api/repos/org-a/qa/fine_tunes", headers=h, json=body(after))
        assert made.status_code == 201, made.text
        job_id = made.json()["fine_tune"]["id"]
        runs, _ = await _runs_and_jobs(api, eval_id)
        assert runs == [("queued", "", job_id, {"fine_tuning_job_id": job_id})]
        assert not any("polytune_eval" in w for w in await _warnings(api, job_id))


async def test_checkpoints_true_adds_a_run_per_saved_checkpoint(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        eval_id, after = await _eval_and_request(api)
        training = await client.files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")

        def create(polytune_eval: dict):
            return client.fine_tuning.jobs.create(
                model="polytune-tiny", training_file=training.id, extra_body={"polytune_eval": polytune_eval}
            )

        with pytest.raises(openai.BadRequestError) as e:
            await create({**after, "checkpoints": "yes"})
        assert e.value.body["param"] == "polytune_eval.checkpoints"
        job = await create({**after, "checkpoints": True})
        services = api.app.state.services
        runs = services.eval_runs

        def saved(step: int) -> None:
            # What the training worker writes when it saves a checkpoint (store/worker.py), by
            # hand: nothing trains in this process.
            with runs.db.session() as s:
                org_id = s.scalar(sa.select(t.Job.org_id).where(t.Job.id == job.id))
                s.add(
                    t.Checkpoint(
                        id=f"ftckpt-{step}",
                        job_id=job.id,
                        org_id=org_id,
                        step=step,
                        created_at=step,
                        metrics={},
                        model_id=f"{job.id}:ckpt-step-{step}",
                    )
                )

        def scheduler_pass() -> None:
            with runs.db.session() as s:
                runs.add_checkpoint_runs(s)

        scheduler_pass()
        (waiting,) = [r async for r in client.evals.runs.list(eval_id)]
        assert waiting.model == "" and waiting.metadata == {"fine_tuning_job_id": job.id, "each_checkpoint": "true"}
        saved(5)
        scheduler_pass()
        saved(10)
        scheduler_pass()
        scheduler_pass()  # a checkpoint is evaluated once
        listed = [r async for r in client.evals.runs.list(eval_id, order="asc")]
        assert [(r.status, r.model, r.metadata.get("fine_tuning_checkpoint_id")) for r in listed[1:]] == [
            ("queued", f"{job.id}:ckpt-step-5", "ftckpt-5"),
            ("queued", f"{job.id}:ckpt-step-10", "ftckpt-10"),
        ]
        assert listed[1].data_source.model == f"{job.id}:ckpt-step-5"
