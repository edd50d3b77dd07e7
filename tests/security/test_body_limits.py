"""Request bodies are bounded: a JSON body just over `max_body_bytes` is a 413 in each
dialect's error shape, unread when its length is declared and cut off when it is streamed;
uploads streamed to storage keep their own, larger limit."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl

from .conftest import BODY_LIMIT, UPLOAD_LIMIT


def _over_limit_job() -> bytes:
    body = json.dumps(
        {"model": "polytune-tiny", "training_file": "file-x", "metadata": {"pad": "x" * BODY_LIMIT}}
    ).encode()
    assert BODY_LIMIT < len(body) < BODY_LIMIT + 200
    return body


def test_openai_json_over_limit_is_413(limited_server):
    r = httpx.post(
        f"{limited_server.url}/v1/fine_tuning/jobs",
        content=_over_limit_job(),
        headers={"Authorization": f"Bearer {limited_server.key_a}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["code"] == "request_too_large" and str(BODY_LIMIT) in error["message"]


def test_streamed_body_without_length_is_cut_off(limited_server):
    """A chunked body declares no length: it is counted as it arrives."""
    body = _over_limit_job()

    def chunks():
        for i in range(0, len(body), 1000):
            yield body[i : i + 1000]

    r = httpx.post(
        f"{limited_server.url}/v1/chat/completions",
        content=chunks(),
        headers={"Authorization": f"Bearer {limited_server.key_a}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "request_too_large"


def test_seekr_json_over_limit_is_413_in_its_shape(limited_server):
    r = httpx.post(
        f"{limited_server.url}/v1/flow/fine-tunes",
        content=_over_limit_job(),
        headers={"Authorization": limited_server.key_a, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert "at most" in r.json()["detail"]


def test_oxen_json_over_limit_is_413_in_its_shape(limited_server):
    r = httpx.post(
        f"{limited_server.url}/api/repos/org-a/data/fine_tunes",
        content=_over_limit_job(),
        headers={"Authorization": f"Bearer {limited_server.key_a}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["status"] == "error" and body["status_message"] == "payload_too_large"


def test_json_just_under_limit_is_read(limited_server):
    body = json.dumps(
        {"model": "polytune-tiny", "training_file": "file-x", "metadata": {"pad": "x" * (BODY_LIMIT - 200)}}
    ).encode()
    r = httpx.post(
        f"{limited_server.url}/v1/fine_tuning/jobs",
        content=body,
        headers={"Authorization": f"Bearer {limited_server.key_a}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "metadata", r.text


def test_upload_keeps_its_larger_limit(openai_a):
    """A file over the JSON limit but under the upload limit is stored; one over that is a 413."""
    data = chat_jsonl(200)
    assert BODY_LIMIT < len(data) < UPLOAD_LIMIT
    f = openai_a.files.create(file=("big.jsonl", data), purpose="fine-tune")
    assert f.bytes == len(data)
    with pytest.raises(openai.APIStatusError) as e:
        openai_a.files.create(file=("huge.jsonl", b"x" * (UPLOAD_LIMIT + 1)), purpose="user_data")
    assert e.value.status_code == 413
