"""A file's content honours `Range` (dialects/common/downloads.py ranged_response), in process, on
OpenAI's route and SeekrFlow's: a byte range is a 206 with exactly those bytes, a suffix range the
last bytes, a range past the end 416 with the size, and another org's file 404 whatever the range."""

from __future__ import annotations

import pytest

from tests.api.support import in_process
from tests.helpers import chat_jsonl

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.parametrize("route", ["/v1/files/{id}/content", "/v1/flow/files/{id}/content"])
async def test_file_content_serves_byte_ranges(tmp_path, database_url, route):
    async with in_process(tmp_path, database_url) as api:
        data = chat_jsonl(40)
        f = await api.openai().files.create(file=("train.jsonl", data), purpose="fine-tune")
        url = route.format(id=f.id)

        async def get(key: str | None = None, **headers: str):
            return await api.http.get(url, headers={**api.headers(key), **headers})

        whole = await get()
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-length"] == str(len(data))

        middle = await get(Range="bytes=100-299")
        assert middle.status_code == 206 and middle.content == data[100:300]
        assert middle.headers["content-range"] == f"bytes 100-299/{len(data)}"
        assert middle.headers["content-length"] == "200" and middle.headers["etag"] == whole.headers["etag"]

        rest = await get(Range="bytes=1000-")
        assert rest.status_code == 206 and rest.content == data[1000:]
        suffix = await get(Range="bytes=-10")
        assert suffix.status_code == 206 and suffix.content == data[-10:]

        past = await get(Range=f"bytes={len(data)}-")
        assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(data)}"

        # Another org's file is not there at all, with a range or without.
        assert (await get(api.key_b)).status_code == 404
        assert (await get(api.key_b, Range="bytes=0-9")).status_code == 404
