"""Oxen's error envelope: {"status": "error", "status_message", "error": {"type", "title",
"detail"}}, and a route class that renders every error of an Oxen route in it (the app-wide
handlers speak OpenAI's envelope)."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from polytune.dialects.common.errors import request_param, retry_headers, route_class, status_of
from polytune.domain.errors import DomainError

from .protocol import OXEN_VERSION

# Where Oxen's routes live (its client builds <host>/api/repos/... itself).
PREFIXES = ("/api/repos", "/api/users")

# domain error kind -> (Oxen's status_message, error title); the HTTP status is the common one.
_KINDS = {
    "invalid_request": ("bad_request", "Invalid parameters"),
    "not_found": ("resource_not_found", "Not found"),
    "unauthorized": ("unauthenticated", "Unauthenticated"),
    "too_large": ("payload_too_large", "Payload too large"),
    "conflict": ("resource_already_exists", "Already exists"),
    "rate_limited": ("too_many_requests", "Too many requests"),
    "quota_exceeded": ("too_many_requests", "Quota exceeded"),
    "unavailable": ("service_unavailable", "Service unavailable"),
}


def envelope(
    status: int, status_message: str, title: str, detail: str, *, type: str, param: str | None = None
) -> JSONResponse:
    error = {"type": type, "title": title, "detail": detail}
    if param:
        error["param"] = param
    return JSONResponse(
        {"status": "error", "status_message": status_message, "oxen_version": OXEN_VERSION, "error": error},
        status_code=status,
    )


def render_domain_error(e: DomainError, *, title: str | None = None) -> JSONResponse:
    message, default_title = _KINDS.get(e.kind, _KINDS["invalid_request"])
    response = envelope(status_of(e), message, title or default_title, e.message, type=e.code or e.kind, param=e.param)
    response.headers.update(retry_headers(e) or {})
    return response


def not_supported(what: str) -> JSONResponse:
    """A part of Oxen's protocol polytune does not serve: say so, and what does work."""
    return envelope(
        404,
        "not_implemented",
        "Not supported by polytune",
        f"{what} is not supported by this server. polytune serves Oxen's repository "
        "create/exists, single-file upload (RemoteRepo.upload), file download and the "
        "fine-tune API; push, clone, workspaces (add/commit) and the merkle/versions "
        "sync protocol are not available.",
        type="not_supported",
    )


class OxenErrors:
    """Oxen's envelope for each kind of error (dialects/common/errors.py catches them)."""

    def domain(self, e: DomainError) -> JSONResponse:
        return render_domain_error(e)

    def validation(self, e: RequestValidationError) -> JSONResponse:
        param, err = request_param(e)
        return envelope(
            400,
            "bad_request",
            "Invalid parameters",
            f"Invalid value for '{param}': {err.get('msg')}.",
            type="invalid_value",
            param=param,
        )

    def http(self, e: HTTPException) -> JSONResponse:
        return envelope(e.status_code, "error", "Error", str(e.detail), type="http_error")

    def unhandled(self) -> JSONResponse:
        return envelope(
            500,
            "internal_server_error",
            "Internal server error",
            "The server had an error while processing your request.",
            type="server_error",
        )


# Renders errors raised anywhere in an Oxen route (auth, parsing, services) as Oxen does.
OxenRoute = route_class(OxenErrors())
