"""Where the OpenAI-shaped API answers. The same router objects are mounted under every
prefix (not copies), so TrueFoundry's `/api/llm` is OpenAI's `/v1` by construction."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from .account_router import router as account_router
from .evals_router import router as evals_router
from .graders_router import router as graders_router
from .images_router import router as images_router
from .model_downloads_router import router as model_downloads_router
from .router import router as fine_tuning_router
from .serving_router import router as serving_router

# /v1: OpenAI and Nebius. /api/llm: TrueFoundry (`base_url="<server>/api/llm"`).
OPENAI_PREFIXES: tuple[str, ...] = ("/v1", "/api/llm")

# Every router of the OpenAI family; a new one (chat completions) joins with one line here.
# model_downloads_router first: its /models/{id}/content is more specific than /models/{id:path}.
OPENAI_ROUTERS: list[APIRouter] = [
    model_downloads_router,
    fine_tuning_router,
    serving_router,
    graders_router,
    images_router,
    account_router,
    evals_router,
]


def mount_openai(app: FastAPI, prefix: str) -> None:
    for router in OPENAI_ROUTERS:
        app.include_router(router, prefix=prefix)
