"""Oxen's error envelope: {"status": "error", "status_message", "error": {"type", "title",
"detail"}}, and a route class that renders every error of an Oxen route in it (the app-wide
handlers speak OpenAI's envelope)."""

from __future__ import annotations

import logging

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from polytune.dialects.common.body import loc_to_param
from polytune.domain.errors import DomainError

from .protocol import OXEN_VERSION

log = logging.getLogger("polytune.api.oxen")

# domain error kind -> (HTTP status, Oxen's status_message, error title)
_KINDS = {
    "invalid_request": (400, "bad_request", "Invalid parameters"),
    "not_found": (404, "resource_not_found", "Not found"),
    "unauthorized": (401, "unauthenticated", "Unauthenticated"),
    "too_large": (413, "payload_too_large", "Payload too large"),
    "conflict": (409, "resource_already_exists", "Already exists"),
    "rate_limited": (429, "too_many_requests", "Too many requests"),
    "quota_exceeded": (429, "too_many_requests", "Quota exceeded"),
}


def envelope(status: int, status_message: str, title: str, detail: str, *, type: str,
             param: str | None = None) -> JSONResponse:
    error = {"type": type, "title": title, "detail": detail}
    if param:
        error["param"] = param
    return JSONResponse({"status": "error", "status_message": status_message, "oxen_version": OXEN_VERSION,
                         "error": error}, status_code=status)


def render_domain_error(e: DomainError, *, title: str | None = None) -> JSONResponse:
    status, message, default_title = _KINDS.get(e.kind, _KINDS["invalid_request"])
    response = envelope(status, message, title or default_title, e.message, type=e.code or e.kind, param=e.param)
    if hasattr(e, "retry_after"):
        response.headers["Retry-After"] = str(e.retry_after)
    return response


def not_supported(what: str) -> JSONResponse:
    """A part of Oxen's protocol polytune does not serve: say so, and what does work."""
    return envelope(404, "not_implemented", "Not supported by polytune",
                    f"{what} is not supported by this server. polytune serves Oxen's repository "
                    "create/exists, single-file upload (RemoteRepo.upload), file download and the "
                    "fine-tune API; push, clone, workspaces (add/commit) and the merkle/versions "
                    "sync protocol are not available.", type="not_supported")


class OxenRoute(APIRoute):
    """Renders errors raised anywhere in an Oxen route (auth, parsing, services) as Oxen does."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def handle(request: Request):
            try:
                return await handler(request)
            except DomainError as e:
                return render_domain_error(e)
            except RequestValidationError as e:
                err = e.errors()[0]
                param = loc_to_param(tuple(p for p in err.get("loc", ()) if p not in ("body", "query", "path")))
                return envelope(400, "bad_request", "Invalid parameters",
                                f"Invalid value for '{param}': {err.get('msg')}.", type="invalid_value", param=param)
            except HTTPException as e:
                return envelope(e.status_code, "error", "Error", str(e.detail), type="http_error")
            except Exception:
                log.exception("unhandled error in %s %s", request.method, request.url.path)
                return envelope(500, "internal_server_error", "Internal server error",
                                "The server had an error while processing your request.", type="server_error")

        return handle
