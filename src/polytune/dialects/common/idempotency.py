"""Wraps a create route so a request carrying `Idempotency-Key` runs once per key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from .deps import Services


async def once_per_key(
    request: Request,
    svc: Services,
    org_id: str,
    route: str,
    request_hash: str,
    create: Callable[[], Awaitable[dict[str, Any]]],
    on_replay: Callable[[], None] | None = None,
) -> dict[str, Any]:
    key = request.headers.get("idempotency-key")
    if key is None:
        return await create()
    stored = await run_in_threadpool(svc.idempotency.begin, org_id, route, key, request_hash)
    if stored is not None:
        if on_replay:
            on_replay()
        return stored
    try:
        response = await create()
    except BaseException:
        await run_in_threadpool(svc.idempotency.abandon, org_id, route, key)
        raise
    await run_in_threadpool(svc.idempotency.finish, org_id, route, key, response)
    return response
