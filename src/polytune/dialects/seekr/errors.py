"""SeekrFlow's errors, rendered by its own routes (whatever the app's global handlers say).

- A body that does not fit the schema, or a field whose value the service refuses (an
  unknown model, a missing file, a number out of range): 422 with FastAPI's
  HTTPValidationError shape, `{"detail": [{"loc", "msg", "type"}]}`, `loc` naming the field.
- Anything else a caller got wrong: FastAPI's HTTPException shape `{"detail": "..."}` with
  400 (a request this server can't do, such as a method it has no recipe for yet), 401,
  404, 409, 413 or 429 (an organization's quota, services/quotas.py). The `seekrai` SDK turns 400/404 into InvalidRequestError and 401 into
  AuthenticationError; it shows a 5xx as a bare httpx error and never retries it, so an
  expected failure is never a 5xx.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from polytune.domain.errors import DomainError, InvalidRequest

STATUS = {"invalid_request": 400, "not_found": 404, "unauthorized": 401, "too_large": 413, "conflict": 409,
          "rate_limited": 429, "quota_exceeded": 429}


class NotAvailable(InvalidRequest):
    """Valid Seekr input this server cannot act on yet: a 400, not a validation error."""

    code = "not_available"


class InvalidField(InvalidRequest):
    """A refused value of one body field: a 422 whose `loc` points at it."""

    def __init__(self, loc: tuple, message: str, *, type: str | None = None):
        super().__init__(message, code=type or "value_error")
        self.loc = loc


def render(e: DomainError) -> JSONResponse:
    if isinstance(e, InvalidField):
        return JSONResponse({"detail": [{"loc": list(e.loc), "msg": e.message, "type": e.code}]},
                            status_code=422)
    headers = {"Retry-After": str(e.retry_after)} if hasattr(e, "retry_after") else None
    return JSONResponse({"detail": e.message}, status_code=STATUS.get(e.kind, 400), headers=headers)


@contextlib.contextmanager
def body_fields(loc_of: Callable[[str], tuple | None]) -> Iterator[None]:
    """Inside the block, a service's InvalidRequest about a parameter that is a field of the
    request body becomes an InvalidField at that field's location (`loc_of(param)`)."""
    try:
        yield
    except (InvalidField, NotAvailable):
        raise
    except InvalidRequest as e:
        loc = loc_of(e.param) if e.param else None
        if loc is None:
            raise
        raise InvalidField(("body", *loc), e.message, type=e.code) from None


class SeekrRoute(APIRoute):
    """Routes whose errors come out in Seekr's shapes."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request):
            try:
                return await handler(request)
            except RequestValidationError as e:
                return JSONResponse({"detail": jsonable_encoder(e.errors())}, status_code=422)
            except DomainError as e:
                return render(e)

        return route
