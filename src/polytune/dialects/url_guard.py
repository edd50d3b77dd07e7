"""A NUL character in a request's path or query string (`%00`) is refused before routing, with
a 400 in the dialect's error shape naming where it was: no route, repository path or image
path can pass one on to the database (PostgreSQL refuses NUL in text) or the file system."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from polytune.domain.errors import DomainError, InvalidRequest


def _nul_param(scope: Scope) -> str | None:
    """Where a NUL is: 'path', a query parameter's name, or None."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" not in query and "\x00" not in query:
        return None
    for key, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return key.replace("\x00", "") or "query"
    return "query"


class UrlGuardMiddleware:
    def __init__(self, app: ASGIApp, *, render: Callable[[str, DomainError], Response]):
        self.app, self.render = app, render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        param = _nul_param(scope) if scope["type"] == "http" else None
        if param is None:
            await self.app(scope, receive, send)
            return
        error = InvalidRequest(
            f"The request's {'path' if param == 'path' else repr(param)} contains a NUL character.",
            param=param,
            code="invalid_text",
        )
        await self.render(scope.get("path", "").replace("\x00", ""), error)(scope, receive, send)
