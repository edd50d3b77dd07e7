"""OpenAI's Evals API through the openai SDK (strict parsing), in process on SQLite and
PostgreSQL: evals' create/retrieve/update/list/delete, the testing criteria checked like
graders/validate, jsonl runs (the samples given with the items) run by the eval runner, their
output items, and every other organization's ids answering 404."""

from __future__ import annotations

import asyncio

import openai
import pytest
import sqlalchemy as sa

from polytune.services.eval_runner import EvalRunner
from polytune.store import tables as t
from tests.api.support import in_process
from tests.helpers import chat_jsonl
from tests.helpers import EXACT_GRADER as EXACT, QA_SCHEMA as SCHEMA

# The openai SDK marks its Evals API deprecated (OpenAI retires its own service); polytune keeps it.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:The Evals API is deprecated:DeprecationWarning")]

CONFIG = {"type": "custom", "item_schema": SCHEMA, "include_sample_schema": True}
FUZZY = {
    "type": "text_similarity",
    "name": "fuzzy",
    "input": "{{sample.output_text}}",
    "reference": "{{item.answer}}",
    "evaluation_metric": "fuzzy_match",
    "pass_threshold": 0.8,
}
BOTH = {
    "type": "multi",
    "name": "both",
    "calculate_output": "(exact + fuzzy) / 2",
    "pass_threshold": 0.9,
    "graders": {
        "exact": {k: v for k, v in EXACT.items()},
        "fuzzy": {k: v for k, v in FUZZY.items() if k != "pass_threshold"},
    },
}
ROWS = [
    ("capital of Zorbia?", "Quillon.", "Quillon."),
    ("capital of Frellmark?", "Dunmere.", "Dunmere!"),
    ("founder?", "Captain Heloise Varn.", "Nobody."),
]


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _content(rows=ROWS):
    return [{"item": {"question": q, "answer": a}, "sample": {"output_text": out}} for q, a, out in rows]


def _run_all(api) -> None:
    """What the scheduler's pass does, here by hand (this app runs no scheduler): every queued run."""
    services = api.app.state.services
    runner = EvalRunner(services.eval_runs.db, services.eval_runs, services.inference, services.settings)
    with services.eval_runs.db.session() as s:
        queued = list(s.scalars(sa.select(t.EvalRun.id).where(t.EvalRun.status == "queued")))
    for run_id in queued:
        runner._execute(run_id)


async def _param_of(call) -> str | None:
    with pytest.raises(openai.BadRequestError) as e:
        await call
    return e.value.body.get("param") if isinstance(e.value.body, dict) else None


async def test_evals_are_created_read_updated_listed_and_deleted_within_their_org(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client, other = api.openai(), api.openai(api.key_b)
        created = [
            await client.evals.create(
                name=f"qa-{i}", data_source_config=CONFIG, testing_criteria=[EXACT, FUZZY], metadata={"i": str(i)}
            )
            for i in range(3)
        ]
        ev = created[0]
        assert ev.object == "eval" and ev.name == "qa-0" and ev.metadata == {"i": "0"}
        assert ev.data_source_config.type == "custom"
        assert ev.data_source_config.schema_["properties"]["item"] == SCHEMA
        assert "sample" in ev.data_source_config.schema_["required"]
        assert [c.name for c in ev.testing_criteria] == ["exact", "fuzzy"]
        assert ev.testing_criteria[1].pass_threshold == 0.8
        assert (await client.evals.retrieve(ev.id)).id == ev.id

        await asyncio.sleep(1.1)  # timestamps are in seconds: the update is a later one
        updated = await client.evals.update(ev.id, name="renamed", metadata={"stage": "2"})
        assert updated.name == "renamed" and updated.metadata == {"stage": "2"}

        ids = [e.id for e in created]
        page = await client.evals.list(limit=2, order="asc")
        assert [e.id for e in page.data] == ids[:2] and page.has_more
        after = await client.evals.list(after=page.data[-1].id, limit=2, order="asc")
        assert [e.id for e in after.data] == ids[2:] and not after.has_more
        assert [e.id async for e in client.evals.list(order="desc")] == ids[::-1]
        # Updated last: first when ordered by update time, newest first.
        assert (await client.evals.list(order="desc", order_by="updated_at")).data[0].id == ev.id

        with pytest.raises(openai.NotFoundError):
            await other.evals.retrieve(ev.id)
        with pytest.raises(openai.NotFoundError):
            await other.evals.update(ev.id, name="theirs")
        with pytest.raises(openai.NotFoundError):
            await other.evals.delete(ev.id)
        assert [e async for e in other.evals.list()] == []

        gone = await client.evals.delete(ev.id)
        assert gone.deleted and gone.eval_id == ev.id
        with pytest.raises(openai.NotFoundError):
            await client.evals.retrieve(ev.id)


async def test_bad_configs_and_criteria_are_400s_naming_the_field_as_graders_validate_does(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        for kind in ("logs", "stored_completions"):
            with pytest.raises(openai.BadRequestError) as e:
                await client.evals.create(data_source_config={"type": kind}, testing_criteria=[EXACT])
            assert e.value.body["param"] == "data_source_config.type" and "not supported" in e.value.body["message"]
        assert (
            await _param_of(
                client.evals.create(
                    data_source_config={"type": "custom", "item_schema": {"type": "nope"}}, testing_criteria=[EXACT]
                )
            )
            == "data_source_config.item_schema"
        )
        no_threshold = {k: v for k, v in FUZZY.items() if k != "pass_threshold"}
        assert (
            await _param_of(client.evals.create(data_source_config=CONFIG, testing_criteria=[no_threshold]))
            == "testing_criteria[0].pass_threshold"
        )
        assert (
            await _param_of(client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT, EXACT]))
            == "testing_criteria[1].name"
        )
        # A bad grader: the same error graders/validate gives, under the criterion's name.
        bad = {**EXACT, "operation": "matches"}
        with pytest.raises(openai.BadRequestError) as by_eval:
            await client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT, bad])
        with pytest.raises(openai.BadRequestError) as by_validate:
            await client.fine_tuning.alpha.graders.validate(grader=bad)
        assert by_eval.value.body["param"] == "testing_criteria[1].operation"
        assert by_validate.value.body["param"] == "grader.operation"
        assert by_eval.value.body["code"] == by_validate.value.body["code"] == "invalid_grader"
        typo = {**EXACT, "refrence": "x"}
        assert (
            await _param_of(client.evals.create(data_source_config=CONFIG, testing_criteria=[typo]))
            == "testing_criteria[0].refrence"
        )


async def test_a_jsonl_run_grades_the_given_samples_and_writes_output_items(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client, other = api.openai(), api.openai(api.key_b)
        ev = await client.evals.create(name="qa", data_source_config=CONFIG, testing_criteria=[EXACT, FUZZY])
        run = await client.evals.runs.create(
            ev.id,
            name="given",
            metadata={"k": "v"},
            data_source={"type": "jsonl", "source": {"type": "file_content", "content": _content()}},
        )
        assert run.object == "eval.run" and run.status == "queued" and run.name == "given"
        assert run.report_url.endswith(f"/#/evals/{ev.id}/runs/{run.id}")
        _run_all(api)

        done = await client.evals.runs.retrieve(run.id, eval_id=ev.id)
        assert done.status == "completed", done.error
        assert done.result_counts.model_dump() == {"total": 3, "passed": 1, "failed": 2, "errored": 0}
        per = {r.testing_criteria: (r.passed, r.failed) for r in done.per_testing_criteria_results}
        # "Dunmere!" is fuzzy-close to "Dunmere." but not equal.
        assert per == {"exact": (1, 2), "fuzzy": (2, 1)}

        items = [o async for o in client.evals.runs.output_items.list(run.id, eval_id=ev.id)]
        assert [o.datasource_item_id for o in items] == [0, 1, 2]
        assert [o.status for o in items] == ["pass", "fail", "fail"]
        assert items[1].datasource_item == {"question": "capital of Frellmark?", "answer": "Dunmere."}
        assert items[1].sample.output[0].content == "Dunmere!"
        assert {r.name: r.passed for r in items[1].results} == {"exact": False, "fuzzy": True}
        passed = [o.id async for o in client.evals.runs.output_items.list(run.id, eval_id=ev.id, status="pass")]
        assert passed == [items[0].id]
        failed = await client.evals.runs.output_items.list(run.id, eval_id=ev.id, status="fail", limit=1)
        assert [o.id for o in failed.data] == [items[1].id] and failed.has_more
        one = await client.evals.runs.output_items.retrieve(items[2].id, eval_id=ev.id, run_id=run.id)
        assert one.results[0].score == 0.0 and one.status == "fail"

        listed = [r.id async for r in client.evals.runs.list(ev.id)]
        assert listed == [run.id]
        assert [r.id async for r in client.evals.runs.list(ev.id, status="queued")] == []
        with pytest.raises(openai.NotFoundError):
            await other.evals.runs.retrieve(run.id, eval_id=ev.id)
        with pytest.raises(openai.NotFoundError):
            await other.evals.runs.output_items.retrieve(items[0].id, eval_id=ev.id, run_id=run.id)
        with pytest.raises(openai.NotFoundError):
            await other.evals.runs.cancel(run.id, eval_id=ev.id)

        gone = await client.evals.runs.delete(run.id, eval_id=ev.id)
        assert gone.deleted and gone.run_id == run.id
        with pytest.raises(openai.NotFoundError):
            await client.evals.runs.retrieve(run.id, eval_id=ev.id)


async def test_a_multi_grader_criterion_passes_at_its_threshold(tmp_path, database_url):
    # The openai SDK's eval types have no `multi` criterion, so its strict parsing cannot read this
    # eval back (its default, lenient parsing can): created over plain HTTP, run through the SDK.
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        created = await api.http.post(
            "/v1/evals", headers=api.headers(), json={"data_source_config": CONFIG, "testing_criteria": [BOTH]}
        )
        assert created.status_code == 200, created.text
        ev = created.json()
        assert ev["testing_criteria"][0]["pass_threshold"] == 0.9
        run = await client.evals.runs.create(
            ev["id"], data_source={"type": "jsonl", "source": {"type": "file_content", "content": _content()}}
        )
        _run_all(api)
        done = await client.evals.runs.retrieve(run.id, eval_id=ev["id"])
        # (1 + 1) / 2 passes; "Dunmere!" gives (0 + 0.875) / 2, under 0.9; "Nobody." fails both.
        assert done.result_counts.passed == 1 and done.result_counts.failed == 2
        items = [o async for o in client.evals.runs.output_items.list(run.id, eval_id=ev["id"])]
        assert [round(o.results[0].score, 2) for o in items][0] == 1.0
        assert 0.4 < items[1].results[0].score < 0.9


async def test_a_queued_run_is_canceled_and_bad_data_sources_are_400s(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client, other = api.openai(), api.openai(api.key_b)
        ev = await client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT])
        source = {"type": "file_content", "content": _content()}
        run = await client.evals.runs.create(ev.id, data_source={"type": "jsonl", "source": source})
        canceled = await client.evals.runs.cancel(run.id, eval_id=ev.id)
        assert canceled.status == "canceled"
        _run_all(api)
        assert (await client.evals.runs.retrieve(run.id, eval_id=ev.id)).status == "canceled"
        with pytest.raises(openai.BadRequestError):
            await client.evals.runs.cancel(run.id, eval_id=ev.id)

        def jsonl(src):
            return client.evals.runs.create(ev.id, data_source={"type": "jsonl", "source": src})

        # Malformed items: not matching the item schema, not objects, no sample to grade.
        wrong = {"type": "file_content", "content": [{"item": {"question": "q", "answer": 3}, "sample": {}}]}
        assert await _param_of(jsonl(wrong)) == "data_source.source.content[0].item"
        assert await _param_of(jsonl({"type": "file_content", "content": ["x"]})) == "data_source.source.content[0]"
        unsampled = {"type": "file_content", "content": [{"item": {"question": "q", "answer": "a"}}]}
        assert await _param_of(jsonl(unsampled)) == "data_source.source"
        assert await _param_of(jsonl({"type": "stored_completions"})) == "data_source.source.type"
        # Files: of another purpose, of another organization, with a bad line.
        tuning = await client.files.create(file=("t.jsonl", b'{"item": {}}\n'), purpose="fine-tune")
        assert await _param_of(jsonl({"type": "file_id", "id": tuning.id})) == "data_source.source.id"
        theirs = await other.files.create(
            file=("e.jsonl", b'{"item": {"question": "q", "answer": "a"}}\n'), purpose="evals"
        )
        assert await _param_of(jsonl({"type": "file_id", "id": theirs.id})) == "data_source.source.id"
        broken = await client.files.create(file=("b.jsonl", b'{"item": {"question": "q"\n'), purpose="evals")
        with pytest.raises(openai.BadRequestError) as e:
            await jsonl({"type": "file_id", "id": broken.id})
        assert "Line 1" in e.value.body["message"]
        # Completions: the model must exist, and every template field be in every item.
        template = {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}
        completions = {"type": "completions", "source": source, "input_messages": template}
        assert (
            await _param_of(client.evals.runs.create(ev.id, data_source={**completions, "model": "no-such-model"}))
            == "data_source.model"
        )
        missing = {"type": "template", "template": [{"role": "user", "content": "{{item.topic}}"}]}
        with pytest.raises(openai.BadRequestError) as e:
            await client.evals.runs.create(
                ev.id, data_source={**completions, "model": "polytune-tiny", "input_messages": missing}
            )
        assert e.value.body["param"] == "data_source.input_messages.template[0].content"
        assert "topic" in e.value.body["message"]
        assert (
            await _param_of(
                client.evals.runs.create(
                    ev.id,
                    data_source={
                        **completions,
                        "model": "polytune-tiny",
                        "sampling_params": {"max_completion_tokens": 0},
                    },
                )
            )
            == "data_source.sampling_params.max_completion_tokens"
        )
        assert (
            await _param_of(client.evals.runs.create(ev.id, data_source={"type": "responses", "source": source}))
            == "data_source.type"
        )
        with pytest.raises(openai.NotFoundError):
            await other.evals.runs.create(ev.id, data_source={"type": "jsonl", "source": source})


async def test_a_job_names_an_eval_to_run_on_its_fine_tuned_model(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        ev = await client.evals.create(data_source_config=CONFIG, testing_criteria=[EXACT])
        training = await client.files.create(file=("train.jsonl", chat_jsonl(12)), purpose="fine-tune")
        template = {"type": "template", "template": [{"role": "user", "content": "{{item.question}}"}]}
        source = {"type": "file_content", "content": _content()}
        after = {"eval_id": ev.id, "data_source": {"type": "completions", "source": source, "input_messages": template}}

        def create(polytune_eval):
            return client.fine_tuning.jobs.create(
                model="polytune-tiny", training_file=training.id, extra_body={"polytune_eval": polytune_eval}
            )

        assert await _param_of(create({**after, "eval_id": "eval-nope"})) == "polytune_eval.eval_id"
        missing = {"type": "template", "template": [{"role": "user", "content": "{{item.topic}}"}]}
        assert (
            await _param_of(create({**after, "data_source": {**after["data_source"], "input_messages": missing}}))
            == "polytune_eval.data_source.input_messages.template[0].content"
        )
        assert (
            await _param_of(create({**after, "data_source": {**after["data_source"], "model": "x"}}))
            == "polytune_eval.data_source"
        )
        job = await create(after)
        (waiting,) = [r async for r in client.evals.runs.list(ev.id)]
        assert waiting.status == "queued" and waiting.model == "" and waiting.metadata == {"fine_tuning_job_id": job.id}
        # Not runnable before the job has a model; once the job is cancelled, the run is too.
        _run_all(api)
        assert (await client.evals.runs.retrieve(waiting.id, eval_id=ev.id)).status == "queued"
        await client.fine_tuning.jobs.cancel(job.id)
        services = api.app.state.services
        EvalRunner(services.eval_runs.db, services.eval_runs, services.inference, services.settings).dispatch()
        ended = await client.evals.runs.retrieve(waiting.id, eval_id=ev.id)
        assert ended.status == "canceled" and ended.error.code == "fine_tuning_job_cancelled"
