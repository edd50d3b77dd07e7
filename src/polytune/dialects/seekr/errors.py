"""SeekrFlow's errors, rendered by its own routes (whatever the app's global handlers say).

- A body that does not fit the schema, or a field whose value the service refuses (an
  unknown model, a missing file, a number out of range): 422 with FastAPI's
  HTTPValidationError shape, `{"detail": [{"loc", "msg", "type"}]}`, `loc` naming the field.
- Anything else a caller got wrong: FastAPI's HTTPException shape `{"detail": "..."}` with
  400 (a request this server can't do, such as a method it has no recipe for yet), 401,
  404, 409, 413 or 429 (an organization's quota, services/quotas.py); a path or method under
  /v1/flow that does not exist, too; and a server fault is a 500 in that shape (FastAPI's own),
  never OpenAI's envelope. The `seekrai` SDK turns 400/404 into InvalidRequestError and 401 into
  AuthenticationError; it shows a 5xx as a bare httpx error and never retries it, so an
  expected failure is never a 5xx.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from polytune.dialects.common.errors import retry_headers, route_class, status_of
from polytune.domain.errors import DomainError, InvalidRequest

PREFIX = "/v1/flow"


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
        return JSONResponse({"detail": [{"loc": list(e.loc), "msg": e.message, "type": e.code}]}, status_code=422)
    return JSONResponse({"detail": e.message}, status_code=status_of(e), headers=retry_headers(e))


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


class SeekrErrors:
    """Seekr's shapes for each kind of error (dialects/common/errors.py catches them)."""

    def domain(self, e: DomainError) -> JSONResponse:
        return render(e)

    def validation(self, e: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": jsonable_encoder(e.errors())}, status_code=422)

    def http(self, e: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": e.detail}, status_code=e.status_code, headers=e.headers)

    def unhandled(self) -> JSONResponse:
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)


# Routes whose errors come out in Seekr's shapes.
SeekrRoute = route_class(SeekrErrors())
