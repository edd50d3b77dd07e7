"""JSON bodies parsed by hand, so a wrong content type, bad JSON or a bad field is a 400 that
names the field in the dialect's own envelope (FastAPI's default would be a 422)."""

from __future__ import annotations

from typing import TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from polytune.domain.errors import InvalidRequest

M = TypeVar("M", bound=BaseModel)


# Parts of a pydantic error location that name a union member or validator, not a field
# (matched whole: a field such as "integrations" starts with "int").
_VALIDATOR_PARTS = ("int", "float", "str", "bool", "none", "strict-int", "strict-float", "constrained-float")


def loc_to_param(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _VALIDATOR_PARTS or str(part).startswith(("literal[", "list[", "dict[", "function-")):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out


def validation_error(e: ValidationError) -> InvalidRequest:
    err = e.errors()[0]
    param = loc_to_param(tuple(err.get("loc", ())))
    if err.get("type") == "extra_forbidden":
        return InvalidRequest(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")
    if err.get("type") == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")
    return InvalidRequest(f"Invalid value for '{param}': {err.get('msg')}.", param=param, code="invalid_value")


def _nul_at(value, path: str = "") -> str | None:
    """The field (as a param name) of the first string holding NUL, a character no database
    text column takes; None when there is none."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if "\x00" in str(k):
                return sub
            if (found := _nul_at(v, sub)) is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            if (found := _nul_at(v, f"{path}[{i}]")) is not None:
                return found
    return None


async def json_body(request: Request, model: type[M]) -> M:
    ctype = request.headers.get("content-type", "")
    # Checked before the body is read: a body of the wrong kind is refused unread.
    if not ctype.split(";")[0].strip().lower().endswith("json"):
        raise InvalidRequest(
            f"Expected a JSON body with 'Content-Type: application/json', got '{ctype or 'none'}'.",
            code="invalid_content_type",
        )
    raw = await request.body()
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as e:
        raise InvalidRequest(f"The body is not valid JSON: {e}.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object.", code="invalid_json")
    if b"\\u0000" in raw and (where := _nul_at(data)) is not None:
        raise InvalidRequest(f"'{where}' contains a NUL character.", param=where, code="invalid_text")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise validation_error(e) from None
