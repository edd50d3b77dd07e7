"""An upload's parts are held to the size it declared: a part that would go over is refused
when it arrives (not at complete, after it filled storage), and complete with a total that
differs is refused naming the field."""

from __future__ import annotations

import openai
import pytest


def test_part_over_declared_bytes_is_refused(openai_a):
    up = openai_a.uploads.create(bytes=10, filename="x.jsonl", mime_type="text/plain", purpose="user_data")
    head = openai_a.uploads.parts.create(upload_id=up.id, data=b"123456")
    with pytest.raises(openai.BadRequestError) as e:
        openai_a.uploads.parts.create(upload_id=up.id, data=b"12345")
    assert e.value.body["param"] == "data" and "10 bytes" in e.value.body["message"]
    # The refused part is not counted: the remaining four bytes still fit, and complete works.
    tail = openai_a.uploads.parts.create(upload_id=up.id, data=b"7890")
    done = openai_a.uploads.complete(upload_id=up.id, part_ids=[head.id, tail.id])
    assert openai_a.files.content(done.file.id).content == b"1234567890"


def test_single_part_larger_than_upload_is_refused(openai_a):
    up = openai_a.uploads.create(bytes=3, filename="x.txt", mime_type="text/plain", purpose="user_data")
    with pytest.raises(openai.BadRequestError) as e:
        openai_a.uploads.parts.create(upload_id=up.id, data=b"abcd")
    assert e.value.body["param"] == "data"


def test_complete_with_a_different_total_names_the_field(openai_a):
    up = openai_a.uploads.create(bytes=10, filename="x.txt", mime_type="text/plain", purpose="user_data")
    p = openai_a.uploads.parts.create(upload_id=up.id, data=b"12345")
    with pytest.raises(openai.BadRequestError) as e:
        openai_a.uploads.complete(upload_id=up.id, part_ids=[p.id])
    assert e.value.body["param"] == "part_ids" and "10 bytes" in e.value.body["message"]
    q = openai_a.uploads.parts.create(upload_id=up.id, data=b"67890")
    done = openai_a.uploads.complete(upload_id=up.id, part_ids=[p.id, q.id])
    assert done.status == "completed" and done.file.bytes == 10
    assert openai_a.files.content(done.file.id).content == b"1234567890"
