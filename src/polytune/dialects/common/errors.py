"""The one error path of every dialect: which HTTP status each kind of domain error is, which
request parameter a pydantic error names, and a route class that catches every error a route
raises (domain errors, request validation, HTTP errors, bugs) and hands it to its dialect's
renderer. A dialect's own errors.py only draws its envelope."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from polytune.dialects.common.body import loc_to_param
from polytune.domain.errors import DomainError

log = logging.getLogger("polytune.api")

# domain error kind -> HTTP status
STATUS = {
    "invalid_request": 400,
    "not_found": 404,
    "unauthorized": 401,
    "too_large": 413,
    "conflict": 409,
    "rate_limited": 429,
    "quota_exceeded": 429,
    "unavailable": 503,
}


def status_of(e: DomainError) -> int:
    return STATUS.get(e.kind, 400)


def retry_headers(e: DomainError) -> dict[str, str] | None:
    """Retry-After for a rate-limited request (the error says how long)."""
    return {"Retry-After": str(e.retry_after)} if hasattr(e, "retry_after") else None


def request_param(e: RequestValidationError) -> tuple[str, dict[str, Any]]:
    """The parameter the first error of a request names (without FastAPI's body/query/path
    prefix), and that error."""
    err = e.errors()[0]
    return loc_to_param(tuple(p for p in err.get("loc", ()) if p not in ("body", "query", "path"))), err


class Renderer(Protocol):
    """A dialect's envelope for each kind of error."""

    def domain(self, e: DomainError) -> Response: ...

    def validation(self, e: RequestValidationError) -> Response: ...

    def http(self, e: HTTPException) -> Response: ...

    def unhandled(self) -> Response: ...


def route_class(renderer: Renderer) -> type[APIRoute]:
    """An APIRoute whose every error comes out in `renderer`'s envelope, whatever the app-wide
    handlers (OpenAI's) would say."""

    class DialectRoute(APIRoute):
        def get_route_handler(self) -> Callable:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except DomainError as e:
                    return renderer.domain(e)
                except RequestValidationError as e:
                    return renderer.validation(e)
                except HTTPException as e:
                    return renderer.http(e)
                except Exception:
                    log.exception("unhandled error in %s %s", request.method, request.url.path)
                    return renderer.unhandled()

            return route

    return DialectRoute


def http_handler_by_prefix(renderers: dict[str, Renderer], fallback: Callable) -> Callable:
    """The app's handler for HTTP errors raised outside any route (a path or method that does
    not exist): the envelope of the dialect whose prefix the path has, else `fallback`'s."""

    async def handle(request: Request, e: HTTPException) -> Response:
        for prefix, renderer in renderers.items():
            if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
                return renderer.http(e)
        return await fallback(request, e)

    return handle
