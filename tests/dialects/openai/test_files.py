"""Files and Uploads through the official openai SDK against a live server."""

from __future__ import annotations

import hashlib
import io

import httpx
import openai
import pytest

from tests.helpers import chat_jsonl


def upload(client, data: bytes = None, name: str = "train.jsonl", purpose: str = "fine-tune"):
    return client.files.create(file=(name, io.BytesIO(data if data is not None else chat_jsonl())), purpose=purpose)


def test_create_retrieve_content_delete(client):
    data = chat_jsonl(15)
    f = upload(client, data)
    assert f.id.startswith("file-")
    assert f.bytes == len(data) and f.filename == "train.jsonl" and f.purpose == "fine-tune"
    assert f.status == "processed"
    assert client.files.retrieve(f.id).id == f.id
    assert client.files.content(f.id).read() == data
    deleted = client.files.delete(f.id)
    assert deleted.deleted and deleted.id == f.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.content(f.id)


def test_bad_fine_tune_file_is_marked_error_with_line(client):
    f = upload(client, b'{"messages": [{"role": "user", "content": "hi"}]}\n{not json\n')
    assert f.status == "error"
    assert "line 2" in f.status_details


def test_list_paginates_and_filters_by_purpose(client):
    ids = [upload(client, name=f"p{i}.jsonl").id for i in range(3)]
    other = upload(client, b"plain", name="notes.txt", purpose="assistants")
    page = client.files.list(limit=2, purpose="fine-tune")
    assert len(page.data) == 2 and page.has_more
    assert [x.id for x in page.data] == ids[::-1][:2]  # newest first
    nxt = client.files.list(limit=2, purpose="fine-tune", after=page.data[-1].id)
    assert nxt.data[0].id == ids[0]
    assert other.id not in {x.id for x in client.files.list(purpose="fine-tune").data}
    asc = client.files.list(order="asc", purpose="assistants")
    assert other.id in [x.id for x in asc.data]


def test_other_org_sees_404(client, client_b):
    f = upload(client)
    for call in (
        lambda: client_b.files.retrieve(f.id),
        lambda: client_b.files.content(f.id),
        lambda: client_b.files.delete(f.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert f.id not in {x.id for x in client_b.files.list().data}


def test_invalid_purpose_names_param(client):
    with pytest.raises(openai.BadRequestError) as e:
        upload(client, purpose="nonsense")
    assert e.value.body["param"] == "purpose"


@pytest.mark.live  # a server of its own
def test_too_large_is_413_and_nothing_is_kept(tmp_path):
    from tests.conftest import LiveServer

    # No job trains here: no warm worker process to start.
    small = LiveServer(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", POLYTUNE_MAX_UPLOAD_BYTES="1000", POLYTUNE_WARM_WORKERS="false"
    )
    try:
        key = small.create_key("tiny-limit")
        client = openai.OpenAI(base_url=f"{small.url}/v1", api_key=key, max_retries=0)
        with pytest.raises(openai.APIStatusError) as e:
            client.files.create(file=("big.jsonl", io.BytesIO(b"x" * 5000)), purpose="fine-tune")
        assert e.value.status_code == 413

        # No Content-Length: the limit is enforced while streaming.
        def body():
            yield b'--b\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nfine-tune\r\n'
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n'
            for _ in range(10):
                yield b"y" * 500
            yield b"\r\n--b--\r\n"

        r = httpx.post(
            f"{small.url}/v1/files",
            content=body(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=b"},
        )
        assert r.status_code == 413 and r.json()["error"]["param"] == "file"
        assert client.files.list().data == []
        leftovers = [p for p in (tmp_path / "data" / "blobs").rglob("*") if p.is_file()]
        assert leftovers == []
    finally:
        small.stop()


def test_uploads_parts_in_given_order(client):
    parts_data = [b'{"messages": [{"role": "user", "content": "a"}, ', b'{"role": "assistant", "content": "b"}]}\n']
    total = sum(map(len, parts_data))
    up = client.uploads.create(bytes=total, filename="big.jsonl", mime_type="application/jsonl", purpose="fine-tune")
    assert up.status == "pending" and up.id.startswith("upload-")
    # Send the parts out of order; complete lists them in the right one.
    p2 = client.uploads.parts.create(upload_id=up.id, data=parts_data[1])
    p1 = client.uploads.parts.create(upload_id=up.id, data=parts_data[0])
    done = client.uploads.complete(
        upload_id=up.id, part_ids=[p1.id, p2.id], md5=hashlib.md5(b"".join(parts_data)).hexdigest()
    )
    assert done.status == "completed" and done.file.bytes == total
    assert client.files.content(done.file.id).read() == b"".join(parts_data)


def test_uploads_byte_count_and_part_checks(client):
    up = client.uploads.create(bytes=10, filename="x.jsonl", mime_type="text/plain", purpose="fine-tune")
    p = client.uploads.parts.create(upload_id=up.id, data=b"12345")
    with pytest.raises(openai.BadRequestError) as e:
        client.uploads.complete(upload_id=up.id, part_ids=[p.id])
    assert "10 bytes" in e.value.body["message"] and e.value.body["param"] == "part_ids"
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=up.id, part_ids=[p.id, p.id])
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=up.id, part_ids=["part-unknown"])
    cancelled = client.uploads.cancel(upload_id=up.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=up.id, data=b"more")


def test_missing_and_invalid_key_are_401(server):
    for key in ("", "pt-not-a-key"):
        r = httpx.get(f"{server.url}/v1/files", headers={"Authorization": f"Bearer {key}"} if key else {})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
