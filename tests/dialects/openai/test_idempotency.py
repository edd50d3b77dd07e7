"""Idempotency-Key on creates: a retried request gets the first answer back."""

from __future__ import annotations

import io
import uuid

import openai
import pytest

from tests.helpers import chat_jsonl


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_retried_job_create_makes_one_job(client):
    fid = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl())), purpose="fine-tune").id
    headers = _key()
    first = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=fid, suffix="once", extra_headers=headers
    )
    again = client.fine_tuning.jobs.create(
        model="polytune-tiny", training_file=fid, suffix="once", extra_headers=headers
    )
    assert again.id == first.id
    assert [
        j.id for j in client.fine_tuning.jobs.list(limit=100) if j.user_provided_suffix == "once" and j.id == first.id
    ] == [first.id]
    with pytest.raises(openai.BadRequestError) as e:
        client.fine_tuning.jobs.create(model="polytune-tiny", training_file=fid, suffix="other", extra_headers=headers)
    assert e.value.body["code"] == "idempotency_key_reused"
    client.fine_tuning.jobs.cancel(first.id)


def test_failed_create_frees_its_key(client):
    fid = client.files.create(file=("t.jsonl", io.BytesIO(chat_jsonl())), purpose="fine-tune").id
    headers = _key()
    body = {"model": "no-such-model", "training_file": fid}
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.create(**body, extra_headers=headers)
    with pytest.raises(openai.BadRequestError) as e:  # same request again: evaluated again, not replayed
        client.fine_tuning.jobs.create(**body, extra_headers=headers)
    assert e.value.body["param"] == "model"


def test_retried_file_upload_makes_one_file(client):
    headers = _key()
    data = chat_jsonl(3)
    before = len(client.files.list().data)
    a = client.files.create(file=("a.jsonl", io.BytesIO(data)), purpose="fine-tune", extra_headers=headers)
    b = client.files.create(file=("a.jsonl", io.BytesIO(data)), purpose="fine-tune", extra_headers=headers)
    assert a.id == b.id and len(client.files.list().data) == before + 1
    other = client.files.create(file=("a.jsonl", io.BytesIO(data)), purpose="fine-tune")
    assert other.id != a.id


def test_keys_are_per_organization(client, client_b):
    headers = _key()
    a = client.files.create(file=("a.jsonl", io.BytesIO(chat_jsonl(3))), purpose="fine-tune", extra_headers=headers)
    b = client_b.files.create(file=("a.jsonl", io.BytesIO(chat_jsonl(3))), purpose="fine-tune", extra_headers=headers)
    assert a.id != b.id
