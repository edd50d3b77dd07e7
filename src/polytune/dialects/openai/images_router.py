"""OpenAI's image generation: `POST /images/generations` (the `openai` SDK's
`client.images.generate`) for a catalog image model or one fine-tuned from it, and the image
URLs it answers with. Thin: parse, generate in a worker thread, render."""

from __future__ import annotations

import base64
import time
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, StrictInt
from starlette.concurrency import run_in_threadpool

from polytune.dialects.common.body import json_body
from polytune.dialects.common.deps import Images, OrgId
from polytune.dialects.common.openapi_doc import json_request

router = APIRouter()


class ImageGenerationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str
    prompt: str
    n: StrictInt = 1
    size: str = "auto"
    response_format: Literal["url", "b64_json"] = "url"
    output_format: Literal["png"] = "png"
    # polytune's own: the same seed gives the same images.
    seed: StrictInt | None = None
    # Accepted as OpenAI's SDK may send them; they choose nothing on these models.
    quality: str | None = None
    style: str | None = None
    background: str | None = None
    moderation: str | None = None
    output_compression: StrictInt | None = None
    user: str | None = None


@router.post("/images/generations", openapi_extra=json_request(ImageGenerationRequest))
async def generate_images(request: Request, org: OrgId, images: Images) -> dict[str, Any]:
    req = await json_body(request, ImageGenerationRequest)
    url = req.response_format == "url"
    made = await run_in_threadpool(
        images.generate, org, req.model, req.prompt, n=req.n, size=req.size, seed=req.seed, keep=url
    )
    base = str(request.base_url).rstrip("/") + request.url.path.rsplit("/images/", 1)[0]
    data = [
        {"url": f"{base}/images/files/{img.id}.png"} if url else {"b64_json": base64.b64encode(img.png).decode()}
        for img in made
    ]
    return {"created": int(time.time()), "data": data, "output_format": "png"}


@router.get("/images/files/{image_id}.png")
def image_file(image_id: str, images: Images) -> Response:
    """No key needed: the id is unguessable and lapses after an hour, as OpenAI's URLs do."""
    return Response(images.read(image_id), media_type="image/png")
