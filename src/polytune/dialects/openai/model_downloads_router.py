"""`GET /v1/models/{model}/content` (a polytune extension): a fine-tuned model or checkpoint as a
download, in the format asked for (services/model_export.py), resumable with `Range`. Mounted
before the model routes, whose `/models/{model_id:path}` would otherwise take the whole path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.deps import OrgId, Svc
from polytune.dialects.common.downloads import ranged_response

router = APIRouter()

Format = Annotated[
    str | None,
    Query(
        description="adapter (a LoRA's adapter: peft's folder, or diffusers' for an image model, as a tar), "
        "merged (full weights in safetensors, as a tar) or gguf (one file for llama.cpp / Ollama); "
        "default: adapter for a LoRA fine-tune, merged for a full one"
    ),
]


@router.get("/models/{model_id:path}/content")
async def model_content(model_id: str, request: Request, org: OrgId, svc: Svc, format: Format = None) -> Response:
    exports = svc.exports
    assert exports is not None  # wired by app.build_services
    # The first request for a format builds it (a merge, a conversion): off the event loop.
    export = await run_in_threadpool(exports.prepare, org, model_id, format)
    return ranged_response(
        lambda: exports.open(export),
        export.size,
        export.filename,
        export.media_type,
        request.headers.get("range"),
        etag=f'"{export.blob_key}:{export.size}"',
    )
