"""SeekrFlow's file list, in process: offset pages in its sort vocabulary (dialects/seekr/listing.py
over FileService.list_window), and a sort it does not know named back as its parameter."""

from __future__ import annotations

import pytest

from tests.api.support import in_process
from tests.helpers import chat_jsonl

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def test_seekrflow_file_list_pages_by_offset_in_its_sort_order(tmp_path, database_url):
    async with in_process(tmp_path, database_url) as api:
        client = api.openai()
        made = [
            await client.files.create(file=(name, chat_jsonl(n)), purpose="fine-tune")
            for name, n in (("b.jsonl", 12), ("a.jsonl", 14), ("c.jsonl", 10))
        ]
        await api.openai(api.key_b).files.create(file=("other.jsonl", chat_jsonl(12)), purpose="fine-tune")

        async def listed(**params) -> tuple[list[str], bool]:
            r = await api.http.get("/v1/flow/files", params=params, headers=api.headers())
            assert r.status_code == 200, r.text
            return [f["filename"] for f in r.json()["data"]], r.json()["has_more"]

        assert await listed() == (["c.jsonl", "a.jsonl", "b.jsonl"], False)  # newest first, this org only
        assert await listed(limit=2, offset=1) == (["a.jsonl", "b.jsonl"], False)
        assert await listed(limit=1, offset=1) == (["a.jsonl"], True)
        assert await listed(sort_by="filename", sort_order="asc") == (["a.jsonl", "b.jsonl", "c.jsonl"], False)
        by_size = sorted(made, key=lambda f: f.bytes)
        assert (await listed(sort_by="size", sort_order="asc"))[0] == [f.filename for f in by_size]

        for params, param in (({"sort_by": "bytes"}, "sort_by"), ({"sort_order": "up"}, "sort_order")):
            bad = await api.http.get("/v1/flow/files", params=params, headers=api.headers())
            assert bad.status_code == 400 and param in bad.json()["detail"], bad.text
