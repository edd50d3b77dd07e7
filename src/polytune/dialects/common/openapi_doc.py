"""The OpenAPI document shows the request bodies that routes parse by hand (json_body,
read_multipart), so clients and fuzzers (tests/security/test_fuzz.py) see the real models.

A route names its body with `openapi_extra=json_request(Model)` (or `multipart_request`); the
models' JSON schemas are hoisted into `components/schemas` when the document is built.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

_REF = "#/components/schemas/{model}"
_SCHEMAS = "x-polytune-schemas"  # carried on the operation until install() hoists it


def json_request(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF)
    schemas = {**schema.pop("$defs", {}), model.__name__: schema}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}},
        },
        _SCHEMAS: schemas,
    }


def multipart_request(
    files: list[str], fields: dict[str, dict[str, Any]] | None = None, required: list[str] | None = None
) -> dict[str, Any]:
    properties = {name: {"type": "string", "format": "binary"} for name in files}
    properties.update(fields or {})
    schema = {"type": "object", "properties": properties, "required": required or list(files)}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


def install(app: FastAPI) -> None:
    """Build the app's document as FastAPI does, then move each route's body schemas into it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            components = document.setdefault("components", {}).setdefault("schemas", {})
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    components.update(operation.pop(_SCHEMAS, {}) if isinstance(operation, dict) else {})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
