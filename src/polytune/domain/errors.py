"""Domain errors. Dialects render them in their vendor's envelope; nothing here knows HTTP.

Each error carries a `kind` that a dialect maps to a status code, a machine `code`, a human
`message` and, where one input is to blame, the `param` that names it.
"""

from __future__ import annotations


class DomainError(Exception):
    # invalid_request | not_found | unauthorized | too_large | conflict | quota_exceeded
    kind = "invalid_request"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def __reduce__(self):
        # Errors cross from the engine process to the API server pickled. Exception's own pickling
        # calls the class with its args, which a subclass with its own signature (a model target,
        # a keyword-only retry_after) cannot take: rebuild from the attributes instead.
        return _rebuild, (type(self), self.args, self.__dict__)


def _rebuild(cls: type[DomainError], args: tuple, state: dict) -> DomainError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class InvalidRequest(DomainError):
    kind = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        # Every error carries a machine code (clients branch on it): a named input is an invalid
        # value, anything else an invalid request, unless the raiser knows better.
        super().__init__(
            message, param=param, code=code or self.code or ("invalid_value" if param else "invalid_request")
        )


class NotFound(DomainError):
    kind = "not_found"
    code = "not_found"


class Unauthorized(DomainError):
    kind = "unauthorized"
    code = "invalid_api_key"


class TooLarge(DomainError):
    kind = "too_large"
    code = "file_too_large"


class Conflict(DomainError):
    kind = "conflict"
    code = "conflict"


class RateLimited(DomainError):
    """Too many requests of one kind now: a 429 whose Retry-After says when to try again."""

    kind = "rate_limited"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, param: str | None = None, code: str | None = None):
        super().__init__(message, param=param, code=code)
        self.retry_after = max(1, int(retry_after))


class Unavailable(DomainError):
    """What serves the request is down for now and being brought back (the inference engine's
    process exited): a 503 that a client may retry."""

    kind = "unavailable"
    code = "service_unavailable"


class QuotaExceeded(DomainError):
    """The organization holds all a quota allows (services/quotas.py): a 429 until it holds less."""

    kind = "quota_exceeded"
    code = "quota_exceeded"
