"""Cursor pagination tells an attacker nothing: with a valid key of organization B, an `after`
naming an object of organization A is answered exactly as an id that never existed, on every
cursor-paginated list (files, jobs, a job's events)."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers import chat_jsonl


@pytest.fixture
def org_a_objects(openai_a):
    """A file, a job and one of its events, all of organization A."""
    f = openai_a.files.create(file=("a.jsonl", chat_jsonl(12)), purpose="fine-tune")
    job = openai_a.fine_tuning.jobs.create(model="polytune-tiny", training_file=f.id)
    openai_a.fine_tuning.jobs.cancel(job.id)  # nothing here needs it to train
    event = openai_a.fine_tuning.jobs.list_events(job.id).data[0]
    return {"file": f.id, "job": job.id, "event": event.id}


@pytest.fixture
def job_b(openai_b):
    f = openai_b.files.create(file=("b.jsonl", chat_jsonl(12)), purpose="fine-tune")
    job = openai_b.fine_tuning.jobs.create(model="polytune-tiny", training_file=f.id)
    openai_b.fine_tuning.jobs.cancel(job.id)
    return job.id


def _get(server, key: str, path: str, after: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", params={"after": after}, headers={"Authorization": f"Bearer {key}"})


def _same(a: httpx.Response, b: httpx.Response, foreign: str, unknown: str) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.text.replace(foreign, "<id>") == b.text.replace(unknown, "<id>")


@pytest.mark.parametrize(
    "kind,path", [("file", "/v1/files"), ("job", "/v1/fine_tuning/jobs"), ("file", "/api/llm/files")]
)
def test_foreign_cursor_is_answered_as_an_unknown_one(limited_server, org_a_objects, kind, path):
    foreign = org_a_objects[kind]
    unknown = foreign[:-6] + "zzzzzz"
    b = limited_server.key_b
    _same(_get(limited_server, b, path, foreign), _get(limited_server, b, path, unknown), foreign, unknown)


def test_foreign_event_cursor_on_own_job(limited_server, org_a_objects, job_b):
    foreign = org_a_objects["event"]
    unknown = foreign[:-6] + "zzzzzz"
    path = f"/v1/fine_tuning/jobs/{job_b}/events"
    b = limited_server.key_b
    _same(_get(limited_server, b, path, foreign), _get(limited_server, b, path, unknown), foreign, unknown)
    path = f"/v1/fine_tuning/jobs/{job_b}/checkpoints"
    _same(_get(limited_server, b, path, foreign), _get(limited_server, b, path, unknown), foreign, unknown)


def test_own_cursor_still_pages(limited_server, openai_a, org_a_objects):
    r = _get(limited_server, limited_server.key_a, "/v1/files", org_a_objects["file"])
    assert r.status_code == 200, r.text


def test_too_many_metadata_filters_is_400(limited_server):
    params = {f"metadata[k{i}]": "v" for i in range(200)}
    r = httpx.get(
        f"{limited_server.url}/v1/fine_tuning/jobs",
        params=params,
        headers={"Authorization": f"Bearer {limited_server.key_a}"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata", r.text
