"""OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}. The OpenAI family's
routes (/v1, /api/llm) answer through the app-wide handlers below, which are also what any path
no dialect claims gets; the statuses and params come from dialects/common/errors.py."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from polytune.dialects.common.errors import request_param, retry_headers, status_of
from polytune.domain.errors import DomainError

TYPE = {
    "invalid_request": "invalid_request_error",
    "not_found": "invalid_request_error",
    "unauthorized": "invalid_request_error",
    "too_large": "invalid_request_error",
    "conflict": "invalid_request_error",
    "rate_limited": "rate_limit_error",
    "quota_exceeded": "rate_limit_error",
    "unavailable": "server_error",
}
# A quota is not freed by waiting a second: the SDK's automatic retries of a 429 would only
# repeat the refusal (openai-python honours this header).
NO_RETRY = {"quota_exceeded": {"x-should-retry": "false"}}


def envelope(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": type, "param": param, "code": code}}, status_code=status, headers=headers
    )


def render_domain_error(e: DomainError) -> JSONResponse:
    response = envelope(
        status_of(e),
        e.message,
        type=TYPE.get(e.kind, "invalid_request_error"),
        param=e.param,
        code=e.code,
        headers=NO_RETRY.get(e.kind),
    )
    response.headers.update(retry_headers(e) or {})
    return response


async def domain_error_handler(_: Request, e: DomainError) -> JSONResponse:
    return render_domain_error(e)


async def request_validation_handler(_: Request, e: RequestValidationError) -> JSONResponse:
    param, err = request_param(e)
    return envelope(400, f"Invalid value for '{param}': {err.get('msg')}.", param=param, code="invalid_value")


async def http_error_handler(_: Request, e: HTTPException) -> JSONResponse:
    code = {
        401: "invalid_api_key",
        404: "not_found",
        405: "method_not_allowed",
        413: "request_too_large",
        429: "rate_limit_exceeded",
    }.get(e.status_code, "server_error" if e.status_code >= 500 else "invalid_request")
    return envelope(e.status_code, str(e.detail), code=code)


async def unhandled_error_handler(_: Request, e: Exception) -> JSONResponse:
    import logging

    logging.getLogger("polytune.api").exception("unhandled error")
    return envelope(500, "The server had an error while processing your request.", type="server_error")
