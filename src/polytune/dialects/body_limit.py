"""A limit on every request body, answered with 413 in the error shape of the dialect the path
belongs to.

Every request may send at most `max_body_bytes` (JSON bodies: jobs, chat, graders). A route
that streams an upload to storage raises its own request's allowance before it reads
(`allow_upload`), so the large limit exists only where bytes go to disk, never to memory.

The check sits below routing, on the ASGI `receive` channel: a declared Content-Length over
the allowance is refused before one byte is read, and a body without one (chunked) is counted
as it arrives. Whatever the route made of the interrupted read (FastAPI turns body errors into
400s), the answer that goes out is the 413.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from polytune.domain.errors import DomainError, TooLarge

_SCOPE_KEY = "polytune.body_budget"


class BodyTooLarge(Exception):
    """Raised from `receive` when the body is over its allowance; the middleware answers 413."""


class _Budget:
    def __init__(self, limit: int, declared: int | None):
        self.limit, self.declared, self.received = limit, declared, 0
        self.exceeded: str | None = None  # the message, once over

    def take(self, n: int) -> None:
        self.received += n
        size = max(self.received, self.declared or 0)
        if size > self.limit:
            self.exceeded = f"The request body is {size} bytes; this endpoint accepts at most {self.limit} bytes."
            raise BodyTooLarge(self.exceeded)


def allow_upload(request: Request, max_bytes: int) -> None:
    """Let this request's body be up to `max_bytes` (a route streaming an upload to storage)."""
    budget = request.scope.get(_SCOPE_KEY)
    if budget is not None:
        budget.limit = max(budget.limit, max_bytes)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, render: Callable[[str, DomainError], Response]):
        self.app, self.max_bytes, self.render = app, max_bytes, render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = _Budget(self.max_bytes, _declared_length(scope))
        scope[_SCOPE_KEY] = budget
        started = False

        async def counted_receive() -> Message:
            if budget.exceeded:
                raise BodyTooLarge(budget.exceeded)
            if not budget.received:
                budget.take(0)  # the declared length alone may be over
            message = await receive()
            if message["type"] == "http.request":
                budget.take(len(message.get("body", b"")))
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if budget.exceeded:
                return  # the route's own answer to the broken read is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except BodyTooLarge:
            pass
        if budget.exceeded and not started:
            error = TooLarge(budget.exceeded, code="request_too_large")
            await self.render(scope.get("path", ""), error)(scope, receive, send)


def render_for_path(path: str, error: DomainError) -> Response:
    """The error in the envelope of the dialect that serves `path` (OpenAI's for the rest)."""
    from polytune.dialects.openai import errors as openai_errors
    from polytune.dialects.oxen import errors as oxen_errors
    from polytune.dialects.seekr import errors as seekr_errors

    if path.startswith("/v1/flow/"):
        return seekr_errors.render(error)
    if path.startswith(("/api/repos", "/api/users")):
        return oxen_errors.render_domain_error(error)
    return openai_errors.render_domain_error(error)
