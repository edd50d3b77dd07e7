"""OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from polytune.dialects.common.body import loc_to_param
from polytune.domain.errors import DomainError

STATUS = {"invalid_request": 400, "not_found": 404, "unauthorized": 401, "too_large": 413, "conflict": 409,
          "rate_limited": 429, "quota_exceeded": 429}
TYPE = {"invalid_request": "invalid_request_error", "not_found": "invalid_request_error",
        "unauthorized": "invalid_request_error", "too_large": "invalid_request_error",
        "conflict": "invalid_request_error", "rate_limited": "rate_limit_error",
        "quota_exceeded": "rate_limit_error"}
# A quota is not freed by waiting a second: the SDK's automatic retries of a 429 would only
# repeat the refusal (openai-python honours this header).
NO_RETRY = {"quota_exceeded": {"x-should-retry": "false"}}


def envelope(status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
             code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type, "param": param, "code": code}},
                        status_code=status, headers=headers)


def render_domain_error(e: DomainError) -> JSONResponse:
    response = envelope(STATUS.get(e.kind, 400), e.message, type=TYPE.get(e.kind, "invalid_request_error"),
                        param=e.param, code=e.code, headers=NO_RETRY.get(e.kind))
    if hasattr(e, "retry_after"):
        response.headers["Retry-After"] = str(e.retry_after)
    return response


async def domain_error_handler(_: Request, e: DomainError) -> JSONResponse:
    return render_domain_error(e)


async def request_validation_handler(_: Request, e: RequestValidationError) -> JSONResponse:
    err = e.errors()[0]
    param = loc_to_param(tuple(p for p in err.get("loc", ()) if p not in ("body", "query", "path")))
    return envelope(400, f"Invalid value for '{param}': {err.get('msg')}.", param=param, code="invalid_value")


async def http_error_handler(_: Request, e: HTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
    return envelope(e.status_code, str(e.detail), code=code)


async def unhandled_error_handler(_: Request, e: Exception) -> JSONResponse:
    import logging

    logging.getLogger("polytune.api").exception("unhandled error")
    return envelope(500, "The server had an error while processing your request.", type="server_error")
