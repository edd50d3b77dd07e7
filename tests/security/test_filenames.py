"""File names are any Unicode text, stored exactly and given back exactly: in listings, and in
downloads' Content-Disposition as RFC 6266 `filename*`; no character of a name (a quote, `;`,
CR/LF) can add a parameter to that header; names that can't be stored are a 400."""

from __future__ import annotations

import email.message
import email.utils
import io

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl

NAMES = ["données-数据.jsonl", "café.jsonl", "emoji-🙂.jsonl", 'quote"; filename="evil.sh', "semi;colon.jsonl"]


def _disposition(response: httpx.Response) -> tuple[str, list]:
    """The file name a client reads from the response's Content-Disposition as RFC 6266 says
    (`filename*` wins over `filename`), and the header's parameter names, as the standard
    library's parser splits them."""
    msg = email.message.Message()
    msg["Content-Disposition"] = response.headers["content-disposition"]
    params = msg.get_params(header="content-disposition")
    extended = [v for _, v in params if isinstance(v, tuple)]
    plain = [v for k, v in params if k == "filename" and isinstance(v, str)]
    name = email.utils.collapse_rfc2231_value(extended[0]) if extended else plain[0]
    return name, [k for k, _ in params]


def _download(server, file_id: str, key: str) -> httpx.Response:
    r = httpx.get(f"{server.url}/v1/files/{file_id}/content", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return r


@pytest.mark.parametrize("name", NAMES[:3])
def test_openai_sdk_upload_keeps_a_unicode_name(limited_server, openai_a, name):
    data = chat_jsonl(10)
    f = openai_a.files.create(file=(name, data), purpose="fine-tune")
    assert f.filename == name
    assert openai_a.files.retrieve(f.id).filename == name
    assert name in [x.filename for x in openai_a.files.list()]
    r = _download(limited_server, f.id, limited_server.key_a)
    assert r.content == data
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    assert _disposition(r)[0] == name


def test_raw_multipart_with_rfc5987_filename(limited_server):
    """A client that sends `filename*=UTF-8''…` (RFC 5987) beside an ASCII fallback."""
    boundary = "XyZ"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nuser_data\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="donnees.jsonl"; '
        f"filename*=UTF-8''donn%C3%A9es-%E6%95%B0%E6%8D%AE.jsonl\r\n"
        f"Content-Type: application/octet-stream\r\n\r\nhello\r\n--{boundary}--\r\n"
    ).encode()
    r = httpx.post(
        f"{limited_server.url}/v1/files",
        content=body,
        headers={
            "Authorization": f"Bearer {limited_server.key_a}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == "données-数据.jsonl"


def test_raw_httpx_multipart_with_utf8_filename(limited_server):
    r = httpx.post(
        f"{limited_server.url}/v1/files",
        data={"purpose": "user_data"},
        files={"file": ("café-数据.txt", io.BytesIO(b"hi"))},
        headers={"Authorization": f"Bearer {limited_server.key_a}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == "café-数据.txt"


@pytest.mark.parametrize("name", NAMES[3:])
def test_a_name_cannot_inject_header_parameters(limited_server, openai_a, name):
    """Uploads take the name as JSON, so it reaches storage exactly, quote and all."""
    up = openai_a.uploads.create(bytes=2, filename=name, mime_type="text/plain", purpose="user_data")
    part = openai_a.uploads.parts.create(upload_id=up.id, data=b"ok")
    done = openai_a.uploads.complete(upload_id=up.id, part_ids=[part.id])
    assert done.file.filename == name
    r = _download(limited_server, done.file.id, limited_server.key_a)
    filename, keys = _disposition(r)
    assert filename == name
    # One disposition, one ASCII fallback, one RFC 8187 name: nothing of the name became a parameter.
    assert keys == ["attachment", "filename", "filename"], r.headers["content-disposition"]


@pytest.mark.parametrize("name", ["nul\x00.jsonl", "line\r\nX-Evil: 1", "", "x" * 513])
def test_unstorable_names_are_400_naming_the_field(openai_a, name):
    with pytest.raises(openai.BadRequestError) as e:
        openai_a.uploads.create(bytes=2, filename=name, mime_type="text/plain", purpose="user_data")
    assert e.value.body["param"] == "filename"


def test_seekr_download_names_the_file_exactly(limited_server):
    r = httpx.put(
        f"{limited_server.url}/v1/flow/files",
        data={"purpose": "fine-tune"},
        files={"files": ("données.jsonl", io.BytesIO(chat_jsonl(10)))},
        headers={"Authorization": limited_server.key_a},
    )
    assert r.status_code == 200, r.text
    file_id = r.json()["id"]
    r = httpx.get(
        f"{limited_server.url}/v1/flow/files/{file_id}/content", headers={"Authorization": limited_server.key_a}
    )
    assert r.status_code == 200 and _disposition(r)[0] == "données.jsonl"
