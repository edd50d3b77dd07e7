"""The real app in this process: its lifespan run by hand (httpx's ASGI transport does not run
it), the routers reached through httpx.ASGITransport, no scheduler (nothing trains), the
database the `database_url` fixture gives (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from openai import AsyncOpenAI

from polytune.app import create_app
from polytune.config import Settings

BASE = "http://polytune.test"


@dataclass
class InProcess:
    app: FastAPI
    http: httpx.AsyncClient  # no key
    key_a: str
    key_b: str

    def openai(self, key: str | None = None) -> AsyncOpenAI:
        return AsyncOpenAI(
            base_url=f"{BASE}/v1",
            api_key=key or self.key_a,
            http_client=self.http,
            max_retries=0,
            _strict_response_validation=True,
        )

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key_a}"}


@contextlib.asynccontextmanager
async def in_process(tmp: Path, database_url: str) -> AsyncIterator[InProcess]:
    settings = Settings(data_dir=tmp / "data", database_url=database_url)
    app = create_app(settings, run_scheduler=False)
    async with app.router.lifespan_context(app):
        keys = app.state.services.keys
        _, key_a = keys.create_key("org-a")
        _, key_b = keys.create_key("org-b")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
            yield InProcess(app, http, key_a, key_b)
